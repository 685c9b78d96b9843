"""Run a generation for an endpoint, the same way for chat and text completions.

:func:`prepare` checks that the prompt fits the model's context, admits the request (rate limits) and screens
its input (guardrails), cheapest first; :func:`run_whole` generates and
screens the whole answer; :func:`run_stream` opens the engine stream and :func:`sse_body` screens it through the
guardrails' rolling buffer as it goes. Endpoint modules supply a :class:`ChunkFormatter` for their chunk shape;
everything else (token accounting on the request context, the usage chunk, the explanation, errors after the stream
started, the final ``[DONE]``) lives here once.

Once the 200 has gone out, only cancellation (the client left) cuts a stream, and it is recorded as a disconnect.
Any other failure becomes one SSE error event (the engine's mapped error, e.g. ``upstream_error``; anything else
``internal_error`` without the exception's text) followed by ``[DONE]``, with ``finish_reason`` "error".
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel
from starlette.responses import Response

from guardserve.app.context import RequestContext
from guardserve.app.errors import SERVER_ERROR, APIError, from_engine_error, log_unexpected
from guardserve.app.protocol import Explanation, Usage
from guardserve.app.services import Services
from guardserve.app.serving.guarding import GuardSession, begin
from guardserve.app.serving.streams import DONE, PrimedStream, SSEResponse, open_stream, sse_error, sse_event
from guardserve.guardrails.streaming import StreamScreen, StreamStep
from guardserve.models.engine import ChatMessage, Delta, EngineError, FinishReason, GenerationRequest
from guardserve.models.registry import ServedModel


class ChunkFormatter(Protocol):
    include_usage: bool  # the caller asked for a usage chunk (stream_options.include_usage)

    def opening(self, guardrails: Explanation | None) -> bytes | None: ...

    def text(self, text: str) -> bytes: ...

    def finish(self, reason: FinishReason, guardrails: Explanation | None) -> bytes: ...

    def usage(self, usage: Usage) -> bytes: ...


class ChunkEvents:
    """What every chunk shape shares: the response id, timestamps, and OpenAI's rule for the ``usage`` field."""

    def __init__(self, ctx: RequestContext, prefix: str, model: str, include_usage: bool) -> None:
        self.id, self.created, self.model = new_response_id(ctx, prefix), ctx.created, model
        self.include_usage = include_usage

    def event(self, chunk: BaseModel) -> bytes:
        # OpenAI sends "usage": null on every chunk when usage was asked for, and omits it otherwise.
        return sse_event(chunk) if self.include_usage else sse_event(chunk, exclude={"usage"})


def new_response_id(ctx: RequestContext, prefix: str) -> str:
    ctx.response_id = f"{prefix}-{uuid.uuid4().hex}"
    return ctx.response_id


def usage_of(ctx: RequestContext) -> Usage:
    return Usage(
        prompt_tokens=ctx.prompt_tokens,
        completion_tokens=ctx.completion_tokens,
        total_tokens=ctx.prompt_tokens + ctx.completion_tokens,
    )


async def prepare(
    request: GenerationRequest,
    served: ServedModel,
    ctx: RequestContext,
    services: Services,
    requested_policy: str | None,
) -> tuple[GenerationRequest, GuardSession]:
    """Cheapest refusal first: the policy, the context length (a token count), admission, then the input guards
    (the costly part, bounded by the guard stage's queue and deadline). Returns what the engine sees.

    The size caps were checked when ``request`` was built (:mod:`guardserve.app.serving.requests`)."""
    session = begin(services, ctx, requested_policy)
    await check_context(served, request, ctx, services)
    await services.admission.admit(ctx, served, request)
    screened = await session.screen_input(request)
    if ctx.retention == "scrubbed":  # the response record keeps a scrubbed copy (guardserve.app.feedback)
        messages = screened.messages or (ChatMessage("user", screened.prompt or ""),)
        ctx.transcript = tuple((m.role, m.content) for m in messages)
        ctx.answer_parts = []
    return screened, session


async def check_context(
    served: ServedModel, request: GenerationRequest, ctx: RequestContext, services: Services
) -> None:
    """Refuse (400 ``context_length_exceeded``) a prompt that can never fit the model's context, before admission
    could answer it with a 429 to retry. Only with the model's own tokenizer: an estimate over-counts, and the
    engine still checks what this lets through."""
    counter = await services.tokens.counter(served)
    if not counter.exact:
        return
    prompt = await services.tokens.count(served, request)
    ctx.counted_prompt_tokens = prompt
    limit, max_tokens = served.context_length, request.sampling.max_tokens
    param = "messages" if request.messages is not None else "prompt"
    if prompt >= limit:
        raise APIError(
            400,
            f"This model's maximum context length is {limit} tokens. Your prompt is {prompt} tokens, "
            f"{prompt - limit + 1} more than fit with room for one generated token. Shorten the prompt by at least "
            f"{prompt - limit + 1} tokens.",
            param=param,
            code="context_length_exceeded",
        )
    if max_tokens is not None and prompt + max_tokens > limit:
        raise APIError(
            400,
            f"This model's maximum context length is {limit} tokens. You requested {prompt + max_tokens} tokens "
            f"({prompt} in the prompt, {max_tokens} for the completion). Reduce the prompt or max_tokens.",
            param="max_tokens",
            code="context_length_exceeded",
        )


@dataclass(frozen=True)
class Answer:
    text: str | None  # None: the output guards blocked it
    finish_reason: FinishReason


async def run_whole(
    served: ServedModel, request: GenerationRequest, ctx: RequestContext, session: GuardSession
) -> Answer:
    result = await served.engine.generate(request)
    ctx.prompt_tokens = result.prompt_tokens
    ctx.completion_tokens = result.completion_tokens
    text, finish = await session.screen_output(result.text, result.finish_reason)
    ctx.finish_reason = finish
    if ctx.answer_parts is not None and text:
        ctx.answer_parts.append(text)
    return Answer(text, finish)


def json_response(payload: BaseModel, session: GuardSession) -> Response:
    body = payload.__pydantic_serializer__.to_json(payload)
    return Response(content=body, media_type="application/json", headers=session.headers())


async def run_stream(
    served: ServedModel,
    request: GenerationRequest,
    ctx: RequestContext,
    session: GuardSession,
    fmt: ChunkFormatter,
) -> SSEResponse:
    stream = await open_stream(served.engine, request)
    body = sse_body(stream, fmt, ctx, session)
    return SSEResponse(body, on_close=stream.aclose, headers=session.headers())


async def sse_body(
    stream: PrimedStream, fmt: ChunkFormatter, ctx: RequestContext, session: GuardSession
) -> AsyncIterator[bytes]:
    screen = session.stream()
    opening = fmt.opening(session.explanation())
    if opening is not None:
        yield opening
    recorded = screen is None
    try:
        async for delta in stream:
            _record(ctx, delta)
            text, finish = delta.text, delta.finish_reason
            if screen is not None:
                text, blocked = await _screen_delta(screen, text, finish is not None)
                finish = "content_filter" if blocked else finish
            if text:
                ctx.first_sent_at = ctx.first_sent_at or time.perf_counter()
                if ctx.answer_parts is not None:
                    ctx.answer_parts.append(text)
                yield fmt.text(text)
            if finish is not None:
                if screen is not None:
                    session.stream_finished(screen)
                    recorded = True
                ctx.finish_reason = finish
                yield fmt.finish(finish, session.explanation())
                if fmt.include_usage:
                    yield fmt.usage(usage_of(ctx))
                break
    except (asyncio.CancelledError, GeneratorExit):  # cancelled or closed: the client went away mid-stream
        ctx.disconnected = True
        raise
    except Exception as exc:  # a failure after the 200 went out: an error event, then [DONE]; never a cut stream
        ctx.finish_reason = "error"
        yield sse_error(stream_error(exc, ctx))
    finally:  # a failure or a disconnect still counts what the output guards did up to then
        if not recorded and screen is not None:
            session.stream_finished(screen)
    yield DONE


def stream_error(exc: Exception, ctx: RequestContext) -> APIError:
    """The error event for a stream that failed: the engine's mapped error, or a generic one (never its text)."""
    if isinstance(exc, EngineError):
        return from_engine_error(exc)
    if isinstance(exc, APIError):
        return exc
    log_unexpected("stream failed", exc, ctx.request_id)
    return APIError(500, "Internal server error.", type=SERVER_ERROR, code="internal_error")


def _record(ctx: RequestContext, delta: Delta) -> None:
    """Token counts and the engine's token times (TTFT/TPOT as vLLM defines them, before any guard hold-back)."""
    ctx.prompt_tokens = delta.prompt_tokens or ctx.prompt_tokens
    if delta.text or delta.completion_tokens > ctx.completion_tokens:
        ctx.last_token_at = time.perf_counter()
        if delta.text and ctx.first_token_at is None:
            ctx.first_token_at = ctx.last_token_at
    ctx.completion_tokens = delta.completion_tokens


async def _screen_delta(screen: StreamScreen, text: str, last: bool) -> tuple[str, bool]:
    """Feed new text to the guards' rolling buffer: (text now safe to send, whether the stream is blocked)."""
    step = await screen.push(text) if text else StreamStep("")
    if last and step.blocked is None:
        tail = await screen.close()
        step = StreamStep(step.text + tail.text, tail.blocked)
    return step.text, step.blocked is not None
