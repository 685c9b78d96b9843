"""The HTTP engine's pass-through calls (``post_json``, ``post_stream``) against a scripted upstream.

The status is checked before a stream's first event; an ``error`` event raises it mapped; an event that is not an
object is an :class:`UpstreamError`; after ``[DONE]`` the connection is reused, while an early close, or a body held
open after ``[DONE]``, costs the connection (the upstream learns to stop).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from guardserve.models import openai_http
from guardserve.models.engine import EngineTimeoutError, EngineUnavailableError, InvalidRequestError, UpstreamError
from guardserve.models.openai_http import HTTPEngineConfig, OpenAIHTTPEngine
from tests.support.asgi import read_body
from tests.support.scripted_upstream import ScriptedUpstream, chat_event
from tests.support.servers import LiveServer, serve_in_thread

MODEL = "scripted"
HELD = "held open"
STREAMS = {
    "error-event": [chat_event("ok"), b'{"error": {"message": "no", "type": "invalid_request_error", "code": "c"}}'],
    "not-an-object": [chat_event("ok"), b"[1, 2]"],
    "long": [chat_event(str(n)) for n in range(50)] + [b"[DONE]"],
}


class Upstream(ScriptedUpstream):
    """The scripted upstream, a ``/busy`` path that answers 429 with a Retry-After, and a ``/keepalive`` path
    that sends one event, then only SSE comments until the client leaves."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keepalive_left = threading.Event()  # the gateway gave up a keep-alive-only stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/keepalive"):
            await read_body(receive)
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
            )
            await send(
                {"type": "http.response.body", "body": b"data: " + chat_event("ok") + b"\n\n", "more_body": True}
            )
            left = asyncio.ensure_future(receive())
            while not left.done():
                await send({"type": "http.response.body", "body": b": ping\n\n", "more_body": True})
                await asyncio.wait({left}, timeout=0.05)
            self.keepalive_left.set()
            return
        if scope["type"] == "http" and scope["path"].endswith("/busy"):
            await read_body(receive)
            headers = [(b"content-type", b"application/json"), (b"retry-after", b"7")]
            await send({"type": "http.response.start", "status": 429, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"error": {"message": "slow down"}}'})
            return
        await super().__call__(scope, receive, send)


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, LiveServer]]:
    app = Upstream(MODEL, streams=STREAMS, hold_open=frozenset({HELD}))
    server = serve_in_thread(app)  # type: ignore[arg-type]
    yield app, server
    server.stop()


@pytest.fixture
async def engine(upstream: tuple[Upstream, LiveServer]) -> AsyncIterator[OpenAIHTTPEngine]:
    upstream[0].clients.clear()
    engine = OpenAIHTTPEngine(MODEL, upstream[1].v1, MODEL)
    yield engine
    await engine.aclose()


def chat(script: str, stream: bool = True) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": script}], "stream": stream}


async def events(engine: OpenAIHTTPEngine, script: str) -> list[dict[str, Any]]:
    """A whole stream's events, returned once the body after ``[DONE]`` has been drained in the background (only
    then is the connection back in the pool; a loaded machine may start the next request before that)."""
    got = [event async for event in engine.post_stream("/chat/completions", chat(script))]
    if openai_http._background:
        await asyncio.wait(set(openai_http._background), timeout=30)
    return got


async def test_post_json_returns_the_upstream_object(engine: OpenAIHTTPEngine) -> None:
    answer = await engine.post_json("/chat/completions", chat("good", stream=False))
    assert answer["choices"][0]["message"]["content"] == "ok" and answer["usage"]["total_tokens"] == 6
    assert engine.inflight == 0


async def test_an_error_status_raises_before_any_event(engine: OpenAIHTTPEngine) -> None:
    with pytest.raises(EngineUnavailableError) as raised:
        await engine.post_json("/busy", chat("x", stream=False))
    assert raised.value.retry_after == 7.0
    stream = engine.post_stream("/busy", chat("x"))
    with pytest.raises(EngineUnavailableError):
        await anext(stream)
    assert engine.inflight == 0


async def test_a_stream_yields_its_objects_and_reuses_one_connection(
    engine: OpenAIHTTPEngine, upstream: tuple[Upstream, LiveServer]
) -> None:
    for _ in range(5):
        got = await events(engine, "good")
        assert [e["choices"][0]["delta"].get("content") for e in got[:2]] == ["ok", None]
        assert got[-1]["usage"]["total_tokens"] == 6
        assert len(await events(engine, "long")) == 50
    assert len(upstream[0].clients) == 10 and len(set(upstream[0].clients)) == 1
    assert engine.inflight == 0


async def test_an_error_event_raises_it_mapped(engine: OpenAIHTTPEngine) -> None:
    got: list[dict[str, Any]] = []
    with pytest.raises(InvalidRequestError) as raised:
        async for event in engine.post_stream("/chat/completions", chat("error-event")):
            got.append(event)
    assert raised.value.code == "c" and len(got) == 1


async def test_an_event_that_is_not_an_object_is_an_upstream_error(engine: OpenAIHTTPEngine) -> None:
    with pytest.raises(UpstreamError):
        await events(engine, "not-an-object")


async def test_an_early_close_gives_up_the_connection(
    engine: OpenAIHTTPEngine, upstream: tuple[Upstream, LiveServer]
) -> None:
    stream = engine.post_stream("/chat/completions", chat("long"))
    assert (await anext(stream))["choices"][0]["delta"]["content"] == "0"
    await stream.aclose()  # type: ignore[attr-defined]
    assert engine.inflight == 0
    assert len(await events(engine, "long")) == 50
    assert len(set(upstream[0].clients)) == 2


async def test_a_body_held_open_after_done_ends_the_stream_on_a_new_connection_next(
    engine: OpenAIHTTPEngine, upstream: tuple[Upstream, LiveServer]
) -> None:
    for _ in range(2):
        got = await events(engine, HELD)
        assert got[-1]["usage"]["total_tokens"] == 6
    assert len(set(upstream[0].clients)) == 2


async def test_a_stream_of_keep_alives_only_times_out_between_events(upstream: tuple[Upstream, LiveServer]) -> None:
    """Comments keep bytes flowing (no read timeout fires), but no event comes: the event timeout ends it and the
    connection is closed, which the upstream sees."""
    engine = OpenAIHTTPEngine(MODEL, upstream[1].v1, MODEL, HTTPEngineConfig(event_timeout=1.0))
    try:
        stream = engine.post_stream("/keepalive", chat("x"))
        assert (await anext(stream))["choices"][0]["delta"]["content"] == "ok"
        started = time.monotonic()
        with pytest.raises(EngineTimeoutError, match="no stream event"):
            await anext(stream)
        assert time.monotonic() - started >= 0.9  # the event deadline, not something sooner
        closed = await asyncio.to_thread(upstream[0].keepalive_left.wait, 30)
        assert closed, "the upstream never saw the connection close"
        assert engine.inflight == 0
    finally:
        await engine.aclose()
