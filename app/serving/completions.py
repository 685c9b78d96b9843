"""``/v1/completions`` (legacy text completions): serving logic apart from the router."""

from __future__ import annotations

from app.context import RequestContext
from app.protocol import Completion, CompletionChoice, CompletionRequest, Usage
from app.services import Services
from app.serving.driver import ChunkEvents, complete, new_response_id, sse_body, usage_of
from app.serving.requests import completion_request
from app.serving.streams import SSEResponse, open_stream
from models.engine import FinishReason
from models.registry import ServedModel


async def text_completion(
    body: CompletionRequest, served: ServedModel, ctx: RequestContext, services: Services
) -> Completion:
    request = completion_request(body, served, ctx, services.settings)
    await services.admission.admit(ctx, served, request)
    result = await complete(served.engine, request, ctx)
    text = body.prompt_text() + result.text if body.echo else result.text
    return Completion(
        id=new_response_id(ctx, "cmpl"),
        created=ctx.created,
        model=served.name,
        choices=[CompletionChoice(text=text, finish_reason=result.finish_reason)],
        usage=usage_of(ctx),
    )


async def text_completion_stream(
    body: CompletionRequest, served: ServedModel, ctx: RequestContext, services: Services
) -> SSEResponse:
    request = completion_request(body, served, ctx, services.settings)
    await services.admission.admit(ctx, served, request)
    stream = await open_stream(served.engine, request)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    fmt = _TextChunks(ctx, "cmpl", served.name, include_usage)
    fmt.echo = body.prompt_text() if body.echo else None
    return SSEResponse(sse_body(stream, fmt, ctx, include_usage), on_close=stream.aclose)


class _TextChunks(ChunkEvents):
    echo: str | None = None  # the prompt, sent first when the request asked for echo

    def _chunk(self, choices: list[CompletionChoice], usage: Usage | None = None) -> bytes:
        return self.event(Completion(id=self.id, created=self.created, model=self.model, choices=choices, usage=usage))

    def opening(self) -> bytes | None:
        return self.text(self.echo) if self.echo else None

    def text(self, text: str) -> bytes:
        return self._chunk([CompletionChoice(text=text, finish_reason=None)])

    def finish(self, reason: FinishReason) -> bytes:
        return self._chunk([CompletionChoice(text="", finish_reason=reason)])

    def usage(self, usage: Usage) -> bytes:
        return self._chunk([], usage)
