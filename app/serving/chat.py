"""``/v1/chat/completions``: serving logic apart from the router."""

from __future__ import annotations

from starlette.responses import Response

from guardserve.app.context import RequestContext
from guardserve.app.protocol import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceDelta,
    Explanation,
    Usage,
)
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
from guardserve.app.serving.requests import chat_request
from guardserve.models.engine import FinishReason
from guardserve.models.registry import ServedModel


async def chat_completion(
    body: ChatCompletionRequest, served: ServedModel, ctx: RequestContext, services: Services
) -> Response:
    request, session = await prepare(
        chat_request(body, served, ctx, services.settings), served, ctx, services, body.requested_policy()
    )
    answer = await run_whole(served, request, ctx, session)
    completion = ChatCompletion(
        id=new_response_id(ctx, "chatcmpl"),
        created=ctx.created,
        model=served.name,
        choices=[ChatChoice(message=AssistantMessage(content=answer.text), finish_reason=answer.finish_reason)],
        usage=usage_of(ctx),
        guardrails=session.explanation(),
    )
    return json_response(completion, session)


async def chat_completion_stream(
    body: ChatCompletionRequest, served: ServedModel, ctx: RequestContext, services: Services
) -> Response:
    request, session = await prepare(
        chat_request(body, served, ctx, services.settings), served, ctx, services, body.requested_policy()
    )
    fmt = _ChatChunks(ctx, "chatcmpl", served.name, body.include_usage())
    return await run_stream(served, request, ctx, session, fmt)


class _ChatChunks(ChunkEvents):
    def _chunk(
        self, choices: list[ChatChunkChoice], usage: Usage | None = None, guardrails: Explanation | None = None
    ) -> bytes:
        chunk = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage, guardrails=guardrails
        )
        return self.event(chunk)

    def opening(self, guardrails: Explanation | None) -> bytes:
        return self._chunk([ChatChunkChoice(delta=ChoiceDelta(role="assistant", content=""))], guardrails=guardrails)

    def text(self, text: str) -> bytes:
        return self._chunk([ChatChunkChoice(delta=ChoiceDelta(content=text))])

    def finish(self, reason: FinishReason, guardrails: Explanation | None) -> bytes:
        return self._chunk([ChatChunkChoice(delta=ChoiceDelta(), finish_reason=reason)], guardrails=guardrails)

    def usage(self, usage: Usage) -> bytes:
        return self._chunk([], usage)
