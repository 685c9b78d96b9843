"""The HTTP engine against an upstream that misbehaves, through the real gateway, and its upstream connections.

A scripted upstream sends a good first chunk and then one malformed event: the caller gets that chunk, one SSE error
event (``upstream_error``, with none of the parser's exception text) and ``data: [DONE]``; the request counts as a 200
that ended in an error, not as a client that left (499). A malformed whole answer is a 502 ``upstream_error``. A
failure that is not the engine's is an ``internal_error`` event, again without its text. Sequential streams share
one upstream connection.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest

from guardserve.app.main import create_app
from guardserve.app.settings import Settings
from guardserve.models.engine import Completion, Delta, EngineHealth, GenerationRequest
from guardserve.models.registry import ModelEntry, ServedModel
from tests.conftest import NO_GUARDS
from tests.support.metrics import delta, key, settled
from tests.support.scripted_upstream import ScriptedUpstream, chat_event, text_event
from tests.support.servers import LiveServer, serve_in_thread, wait_until

MODEL = "scripted"
BROKEN = "broken"  # an engine that raises a plain exception mid-stream
SECRET = "secret-internal-detail"
HELD = "held open"  # a good stream whose body stays open after [DONE]

# After a good first chunk, each of these events is malformed (named for the test ids).
MALFORMED = {
    "number": b"5",
    "string": b'"x"',
    "list": b"[1, 2]",
    "not-json": b"{nope",
    "choices-of-strings": b'{"choices": ["x"]}',
    "choices-object": b'{"choices": {"index": 0}}',
    "usage-number": b'{"usage": 7, "choices": []}',
    "usage-count-string": b'{"usage": {"prompt_tokens": "5"}, "choices": []}',
    "usage-count-negative": b'{"usage": {"completion_tokens": -1}, "choices": []}',
    "delta-string": b'{"choices": [{"index": 0, "delta": "x"}]}',
    "content-number": b'{"choices": [{"index": 0, "delta": {"content": 5}}]}',
    "finish-number": b'{"choices": [{"index": 0, "delta": {}, "finish_reason": 3}]}',
    "no-finish": b"[DONE]",  # the stream ends before any choice finished: it was cut
    # an error event whose message holds a lone surrogate: it must still be encodable in our error event
    "error-surrogate": b'{"error": {"message": "bad \\ud800 input", "code": "x\\udfff"}}',
}
MALFORMED_TEXT = {  # the completions route reads "text" instead of "delta"
    "text-number": b'{"choices": [{"index": 0, "text": 5}]}',
    "choices-of-strings": b'{"choices": ["x"]}',
    "number": b"5",
}
MALFORMED_WHOLE = {
    "number": b"5",
    "no-choices": b'{"choices": []}',
    "choices-of-strings": b'{"choices": ["x"]}',
    "message-string": b'{"choices": [{"index": 0, "message": "x", "finish_reason": "stop"}]}',
    "content-number": b'{"choices": [{"index": 0, "message": {"content": 5}, "finish_reason": "stop"}]}',
    "usage-number": b'{"choices": [{"index": 0, "message": {"content": "ok"}}], "usage": 7}',
    "usage-count-string": b'{"choices": [{"index": 0, "message": {"content": "ok"}}], "usage": {"prompt_tokens": "a"}}',
}
# What a Python exception's text looks like: none of it may reach the caller.
LEAKS = ("Traceback", "TypeError", "KeyError", "AttributeError", "subscriptable", "argument of type", SECRET)


def _scripts() -> dict[str, list[bytes]]:
    streams = {f"chat:{name}": [chat_event("ok"), event] for name, event in MALFORMED.items()}
    streams |= {f"text:{name}": [text_event("ok"), event] for name, event in MALFORMED_TEXT.items()}
    return streams


@dataclass
class Fixture:
    gateway: LiveServer
    upstream: ScriptedUpstream
    upstream_server: LiveServer


class BrokenEngine:
    """Streams one good chunk, then fails with a plain exception (a bug, not an engine error)."""

    async def generate(self, request: GenerationRequest) -> Completion:
        raise RuntimeError(SECRET)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        yield Delta("", 3, 0)
        yield Delta("ok", 3, 1)
        raise RuntimeError(SECRET)

    async def health(self) -> EngineHealth:
        return EngineHealth(True, "broken", 0)

    async def aclose(self) -> None:
        return None


@pytest.fixture(scope="module")
def setup() -> Iterator[Fixture]:
    wholes = {f"whole:{name}": body for name, body in MALFORMED_WHOLE.items()}
    upstream = ScriptedUpstream(MODEL, streams=_scripts(), wholes=wholes, hold_open=frozenset({HELD}))
    upstream_server = serve_in_thread(upstream)  # type: ignore[arg-type]
    entry = ModelEntry(name=MODEL, engine="openai", url=upstream_server.v1, context_length=2048)
    gateway = serve_in_thread(create_app(Settings(models=[entry], guardrails=NO_GUARDS)))
    broken = ModelEntry(name=BROKEN, engine="openai", url="http://broken.invalid/v1", context_length=2048)
    gateway.app.state.models[BROKEN] = ServedModel(broken, BrokenEngine(), 2048, True, 0)
    yield Fixture(gateway, upstream, upstream_server)
    gateway.stop()
    upstream_server.stop()


def chat_body(script: str, model: str = MODEL, stream: bool = True) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": script}], "stream": stream}


def sse_events(url: str, body: dict[str, object], request_id: str | None = None) -> list[str]:
    """The ``data:`` lines of a streamed answer, read to the end of the body (a cut stream raises here)."""
    headers = {"X-Request-ID": request_id} if request_id else {}
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        return [line for line in response.iter_lines() if line]


def assert_ends_in_error(events: list[str], code: str) -> None:
    assert events[-1] == "data: [DONE]"
    error = json.loads(events[-2].removeprefix("data: "))["error"]
    assert error["code"] == code and error["type"] == "server_error"
    assert not any(leak in error["message"] for leak in LEAKS), error["message"]
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    texts = [c.get("delta", {}).get("content") or c.get("text") for chunk in chunks for c in chunk["choices"]]
    assert "ok" in texts, events  # the good chunk before the bad one reached the caller
    assert sum(e.startswith('data: {"error"') for e in events) == 1


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_chat_stream_event_ends_in_upstream_error(setup: Fixture, name: str) -> None:
    events = sse_events(f"{setup.gateway.v1}/chat/completions", chat_body(f"chat:{name}"))
    assert_ends_in_error(events, "upstream_error")


@pytest.mark.parametrize("name", list(MALFORMED_TEXT))
def test_malformed_completion_stream_event_ends_in_upstream_error(setup: Fixture, name: str) -> None:
    body = {"model": MODEL, "prompt": f"text:{name}", "stream": True}
    events = sse_events(f"{setup.gateway.v1}/completions", body)
    assert_ends_in_error(events, "upstream_error")


@pytest.mark.parametrize("name", list(MALFORMED_WHOLE))
def test_malformed_whole_answer_is_a_502(setup: Fixture, name: str) -> None:
    response = httpx.post(f"{setup.gateway.v1}/chat/completions", json=chat_body(f"whole:{name}", stream=False))
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_error" and error["type"] == "server_error"
    assert "Traceback" not in error["message"] and "Error(" not in error["message"]


def test_openai_client_sees_an_api_error_not_a_cut_stream(setup: Fixture) -> None:
    client = openai.OpenAI(base_url=setup.gateway.v1, api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "chat:usage-number"}], stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert not isinstance(raised.value, openai.APIConnectionError)  # an error event, not an incomplete read
    assert isinstance(raised.value.body, dict) and raised.value.body["code"] == "upstream_error"
    assert "".join(received) == "ok"


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def by_id(self, request_id: str) -> logging.LogRecord | None:
        return next((r for r in self.records if getattr(r, "request_id", None) == request_id), None)


@pytest.fixture
def access_lines() -> Iterator[Records]:
    handler, logger = Records(), logging.getLogger("guardserve.access")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_an_errored_stream_counts_as_an_error_not_a_disconnect(setup: Fixture, access_lines: Records) -> None:
    metrics = setup.gateway.url + "/metrics"
    before = settled(metrics)
    events = sse_events(f"{setup.gateway.v1}/chat/completions", chat_body("chat:choices-of-strings"), "bad-upstream")
    assert_ends_in_error(events, "upstream_error")
    moved = delta(before, settled(metrics))
    route = "/v1/chat/completions"
    assert moved[key("guardserve_requests_total", route=route, model=MODEL, status="200")] == 1
    assert not [k for k in moved if 'status="499"' in k], moved
    assert moved[key("guardserve_engine_errors_total", engine=MODEL, kind="upstream")] == 1
    wait_until(lambda: access_lines.by_id("bad-upstream") is not None, timeout=10)
    line = access_lines.by_id("bad-upstream")
    assert line is not None and line.status == 200  # type: ignore[attr-defined]
    assert line.finish_reason == "error"  # type: ignore[attr-defined]
    assert not getattr(line, "disconnected", False)


def test_a_plain_exception_mid_stream_is_an_internal_error_without_its_text(
    setup: Fixture, access_lines: Records, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="guardserve.app")
    events = sse_events(f"{setup.gateway.v1}/chat/completions", chat_body("anything", model=BROKEN), "broken-engine")
    assert_ends_in_error(events, "internal_error")
    assert not any(SECRET in e for e in events)
    wait_until(lambda: access_lines.by_id("broken-engine") is not None)
    # logged with its type and frames, never its message (an exception's text can hold the answer's words)
    assert "RuntimeError" in caplog.text and SECRET not in caplog.text
    line = access_lines.by_id("broken-engine")
    assert line is not None and line.status == 200 and line.finish_reason == "error"  # type: ignore[attr-defined]
    assert not getattr(line, "disconnected", False)


def test_sequential_streams_share_one_upstream_connection(setup: Fixture) -> None:
    client = openai.OpenAI(base_url=setup.gateway.v1, api_key="unused", max_retries=0)
    setup.upstream.clients.clear()
    for n in range(12):
        if n % 2:
            chunks = list(client.completions.create(model=MODEL, prompt="good", stream=True))
            assert "".join(c.choices[0].text for c in chunks if c.choices) == "ok"
        else:
            chat = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "good"}], stream=True
            )
            assert "".join(c.choices[0].delta.content or "" for c in chat if c.choices) == "ok"
    assert len(setup.upstream.clients) == 12
    assert len(set(setup.upstream.clients)) == 1, f"{len(set(setup.upstream.clients))} connections for 12 streams"


def test_a_body_left_open_after_done_still_ends_the_answer(setup: Fixture) -> None:
    """[DONE] came but the upstream keeps the body open: the caller still gets the whole answer and [DONE] (the
    connection is given up after a short wait), and the next stream works on a new connection."""
    setup.upstream.clients.clear()
    for _ in range(2):
        events = sse_events(f"{setup.gateway.v1}/chat/completions", chat_body(HELD))
        assert events[-1] == "data: [DONE]"
        assert not any(e.startswith('data: {"error"') for e in events)
        assert any(json.loads(e[6:])["choices"][0]["finish_reason"] == "stop" for e in events[:-1])
    assert len(set(setup.upstream.clients)) == 2


def test_a_body_left_open_after_done_does_not_delay_the_answer(setup: Fixture) -> None:
    """The finish chunk and [DONE] reach the caller before the gateway stops waiting for the upstream's body."""
    setup.upstream.left.clear()
    with httpx.stream("POST", f"{setup.gateway.v1}/chat/completions", json=chat_body(HELD), timeout=30) as response:
        for line in response.iter_lines():
            if line == "data: [DONE]":
                done_at = time.monotonic()
                break
    wait_until(lambda: setup.upstream.left, what="the gateway giving up the held-open body")
    assert done_at < setup.upstream.left[0]


# An upstream may escape a lone surrogate in JSON; it must never reach the guards (Presidio cannot encode it) or
# the response encoder. It arrives as U+FFFD, as from any UTF-8 decoder.
SURROGATE_EVENT = b'{"choices": [{"index": 0, "delta": {"content": "the sum is 42\\ud800, mail ann@example.org"}}]}'
SURROGATE_WHOLE = (
    b'{"choices": [{"index": 0, "message": {"content": "the sum is 42\\ud800, mail ann@example.org"},'
    b' "finish_reason": "stop"}],'
    b' "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}'
)


@pytest.fixture(scope="module")
def guarded() -> Iterator[LiveServer]:
    streams = {"surrogate": [SURROGATE_EVENT, chat_event(None, "stop"), b"[DONE]"]}
    upstream = ScriptedUpstream(MODEL, streams=streams, wholes={"surrogate": SURROGATE_WHOLE})
    upstream_server = serve_in_thread(upstream)  # type: ignore[arg-type]
    entry = ModelEntry(name=MODEL, engine="openai", url=upstream_server.v1, context_length=2048)
    gateway = serve_in_thread(create_app(Settings(models=[entry])))  # the default guardrails policy
    yield gateway
    gateway.stop()
    upstream_server.stop()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_lone_surrogate_from_the_upstream_is_replaced_before_the_guards(guarded: LiveServer, stream: bool) -> None:
    client = openai.OpenAI(base_url=guarded.v1, api_key="unused", max_retries=0)
    messages = [{"role": "user", "content": "surrogate"}]
    if stream:
        chunks = client.chat.completions.create(model=MODEL, messages=messages, stream=True)  # type: ignore[arg-type]
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        answer = client.chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]
        text = answer.choices[0].message.content or ""
    assert text.startswith("the sum is 42\ufffd, mail "), text
    assert "ann@example.org" not in text  # the output guards ran (and masked the e-mail), not failed
