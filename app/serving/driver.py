"""Run a generation for an endpoint: whole (``complete``) or as SSE bytes (``sse_body``).

Endpoint modules supply a :class:`ChunkFormatter` for their chunk shape; everything else (token accounting on the
request context, the usage chunk, errors after the stream started, the final ``[DONE]``) lives here once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

from pydantic import BaseModel

from app.context import RequestContext
from app.errors import from_engine_error
from app.protocol import Usage
from app.serving.streams import DONE, PrimedStream, sse_error, sse_event
from models.engine import Completion, Delta, Engine, EngineError, FinishReason, GenerationRequest


class ChunkFormatter(Protocol):
    def opening(self) -> bytes | None: ...

    def text(self, text: str) -> bytes: ...

    def finish(self, reason: FinishReason) -> bytes: ...

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


def _record(ctx: RequestContext, delta: Delta) -> None:
    ctx.prompt_tokens = delta.prompt_tokens or ctx.prompt_tokens
    if delta.text or delta.completion_tokens > ctx.completion_tokens:
        ctx.last_token_at = time.perf_counter()
        if delta.text and ctx.first_token_at is None:
            ctx.first_token_at = ctx.last_token_at
    ctx.completion_tokens = delta.completion_tokens
    if delta.finish_reason is not None:
        ctx.finish_reason = delta.finish_reason


async def complete(engine: Engine, request: GenerationRequest, ctx: RequestContext) -> Completion:
    result = await engine.generate(request)
    ctx.prompt_tokens = result.prompt_tokens
    ctx.completion_tokens = result.completion_tokens
    ctx.finish_reason = result.finish_reason
    return result


async def sse_body(
    stream: PrimedStream, fmt: ChunkFormatter, ctx: RequestContext, include_usage: bool
) -> AsyncIterator[bytes]:
    opening = fmt.opening()
    if opening is not None:
        yield opening
    try:
        async for delta in stream:
            _record(ctx, delta)
            if delta.text:
                yield fmt.text(delta.text)
            if delta.finish_reason is not None:
                yield fmt.finish(delta.finish_reason)
                if include_usage:
                    yield fmt.usage(usage_of(ctx))
                break
    except EngineError as exc:
        ctx.finish_reason = "error"
        yield sse_error(from_engine_error(exc))
    except BaseException:  # cancelled: the client went away mid-stream
        ctx.disconnected = True
        raise
    yield DONE
