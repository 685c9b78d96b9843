"""Streaming plumbing shared by the chat and completion endpoints.

* :func:`open_stream` starts an engine stream and waits for its admission event *before* the HTTP response
  starts, so a request the engine rejects still gets a proper status code instead of a 200 stream.
* :class:`SSEResponse` frames events as OpenAI does and, however the response ends (finished, client gone before
  or during streaming), closes the engine stream, which cancels the generation.
* :func:`sse_event` / :func:`sse_error` / :data:`DONE`: the event bytes, framed by :mod:`guardserve.models.sse`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from pydantic import BaseModel
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from guardserve.app.errors import APIError
from guardserve.models.engine import Delta, Engine, GenerationRequest
from guardserve.models.sse import DONE, encode_data

__all__ = ["DONE", "PrimedStream", "SSEResponse", "open_stream", "sse_error", "sse_event"]


def sse_event(payload: BaseModel, exclude: set[str] | None = None) -> bytes:
    return encode_data(payload.__pydantic_serializer__.to_json(payload, exclude=exclude))


def sse_error(error: APIError) -> bytes:
    return encode_data(orjson.dumps(error.body()))


class PrimedStream:
    """An engine stream whose first (admission) event has already arrived."""

    def __init__(self, deltas: AsyncIterator[Delta], first: Delta) -> None:
        self._deltas = deltas
        self.first = first
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[Delta]:
        yield self.first
        async for delta in self._deltas:
            yield delta

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            aclose = getattr(self._deltas, "aclose", None)
            if aclose is not None:
                await aclose()


async def open_stream(engine: Engine, request: GenerationRequest) -> PrimedStream:
    deltas = engine.stream(request)
    try:
        first = await anext(deltas)
    except BaseException:
        aclose = getattr(deltas, "aclose", None)
        if aclose is not None:
            await aclose()
        raise
    return PrimedStream(deltas, first)


class SSEResponse(StreamingResponse):
    """``text/event-stream`` response that always runs ``on_close`` (which cancels the generation)."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        on_close: Callable[[], Awaitable[None]],
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
        )
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._on_close()
