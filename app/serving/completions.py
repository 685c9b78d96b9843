"""``/v1/completions`` (legacy text completions): serving logic apart from the router."""

from __future__ import annotations

from starlette.responses import Response

from guardserve.app.context import RequestContext
from guardserve.app.protocol import Completion, CompletionChoice, CompletionRequest, Explanation, Usage
from guardserve.app.services import Services
from guardserve.app.serving.driver import (
    ChunkEvents,
    json_response,
    new_response_id,
    prepare,
    run_stream,
    run_whole,
    usage_of,
)
from guardserve.app.serving.requests import completion_request
from guardserve.models.engine import FinishReason
from guardserve.models.registry import ServedModel


async def text_completion(
    body: CompletionRequest, served: ServedModel, ctx: RequestContext, services: Services
) -> Response:
    request, session = await prepare(
        completion_request(body, served, ctx, services.settings), served, ctx, services, body.requested_policy()
    )
    answer = await run_whole(served, request, ctx, session)
    text = answer.text
    if body.echo and text is not None:
        text = body.prompt_text() + text
    completion = Completion(
        id=new_response_id(ctx, "cmpl"),
        created=ctx.created,
        model=served.name,
        choices=[CompletionChoice(text=text or "", finish_reason=answer.finish_reason)],
        usage=usage_of(ctx),
        guardrails=session.explanation(),
    )
    return json_response(completion, session)


async def text_completion_stream(
    body: CompletionRequest, served: ServedModel, ctx: RequestContext, services: Services
) -> Response:
    request, session = await prepare(
        completion_request(body, served, ctx, services.settings), served, ctx, services, body.requested_policy()
    )
    fmt = _TextChunks(ctx, "cmpl", served.name, body.include_usage())
    fmt.echo = body.prompt_text() if body.echo else None
    return await run_stream(served, request, ctx, session, fmt)


class _TextChunks(ChunkEvents):
    echo: str | None = None  # the prompt, sent first when the request asked for echo

    def _chunk(
        self, choices: list[CompletionChoice], usage: Usage | None = None, guardrails: Explanation | None = None
    ) -> bytes:
        chunk = Completion(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage, guardrails=guardrails
        )
        return self.event(chunk)

    def opening(self, guardrails: Explanation | None) -> bytes | None:
        if self.echo:
            return self._chunk([CompletionChoice(text=self.echo, finish_reason=None)], guardrails=guardrails)
        if guardrails is not None:
            return self._chunk([CompletionChoice(text="", finish_reason=None)], guardrails=guardrails)
        return None

    def text(self, text: str) -> bytes:
        return self._chunk([CompletionChoice(text=text, finish_reason=None)])

    def finish(self, reason: FinishReason, guardrails: Explanation | None) -> bytes:
        return self._chunk([CompletionChoice(text="", finish_reason=reason)], guardrails=guardrails)

    def usage(self, usage: Usage) -> bytes:
        return self._chunk([], usage)
