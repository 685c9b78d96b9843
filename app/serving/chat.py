"""``/v1/chat/completions``: serving logic apart from the router."""

from __future__ import annotations

from app.context import RequestContext
from app.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceDelta,
    Usage,
)
from app.services import Services
from app.serving.driver import ChunkEvents, complete, new_response_id, sse_body, usage_of
from app.serving.requests import chat_request
from app.serving.streams import SSEResponse, open_stream
from models.engine import FinishReason
from models.registry import ServedModel


async def chat_completion(
    body: ChatCompletionRequest, served: ServedModel, ctx: RequestContext, services: Services
) -> ChatCompletion:
    request = chat_request(body, served, ctx, services.settings)
    await services.admission.admit(ctx, served, request)
    result = await complete(served.engine, request, ctx)
    return ChatCompletion(
        id=new_response_id(ctx, "chatcmpl"),
        created=ctx.created,
        model=served.name,
        choices=[ChatChoice(message=AssistantMessage(content=result.text), finish_reason=result.finish_reason)],
        usage=usage_of(ctx),
    )


async def chat_completion_stream(
    body: ChatCompletionRequest, served: ServedModel, ctx: RequestContext, services: Services
) -> SSEResponse:
    request = chat_request(body, served, ctx, services.settings)
    await services.admission.admit(ctx, served, request)
    stream = await open_stream(served.engine, request)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    fmt = _ChatChunks(ctx, "chatcmpl", served.name, include_usage)
    return SSEResponse(sse_body(stream, fmt, ctx, include_usage), on_close=stream.aclose)


class _ChatChunks(ChunkEvents):
    def _chunk(self, choices: list[ChatChunkChoice], usage: Usage | None = None) -> bytes:
        return self.event(
            ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=choices, usage=usage)
        )

    def opening(self) -> bytes:
        return self._chunk([ChatChunkChoice(delta=ChoiceDelta(role="assistant", content=""))])

    def text(self, text: str) -> bytes:
        return self._chunk([ChatChunkChoice(delta=ChoiceDelta(content=text))])

    def finish(self, reason: FinishReason) -> bytes:
        return self._chunk([ChatChunkChoice(delta=ChoiceDelta(), finish_reason=reason)])

    def usage(self, usage: Usage) -> bytes:
        return self._chunk([], usage)
