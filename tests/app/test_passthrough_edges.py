"""Pass-through edge cases found in review: guard bypasses and crashes, against a scripted upstream (default guardrails
policy). Each test names what once went wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from starlette.types import Receive, Scope, Send

from guardserve.app.main import create_app
from guardserve.app.settings import Settings
from guardserve.models.registry import ModelEntry
from tests.support.asgi import lifespan, read_body
from tests.support.servers import LiveServer, serve_in_thread

MODEL = "up"
EMAIL = "bob.jones@example.com"
SAID = "carol.white@example.net"


class Scripted:
    """Answers with ``self.answer`` (a JSON body) or ``self.events`` (SSE data items); records request bodies."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.answer: dict[str, Any] = {}
        self.events: list[Any] = []
        self.status = 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        raw = await read_body(receive)
        if scope["path"].endswith("/models"):
            body = orjson.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})
            return
        req = orjson.loads(raw)
        self.received.append(req)
        if req.get("stream"):
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
            )
            for e in self.events:
                data = e if isinstance(e, bytes) else orjson.dumps(e)
                await send({"type": "http.response.body", "body": b"data: " + data + b"\n\n", "more_body": True})
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            body = orjson.dumps(self.answer)
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})


class Fx:
    def __init__(self, gateway: LiveServer, upstream: Scripted) -> None:
        self.gateway, self.upstream = gateway, upstream

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.gateway.v1 + path, json=body, timeout=60)


@pytest.fixture(scope="module")
def fx() -> Iterator[Fx]:
    upstream = Scripted()
    up = serve_in_thread(upstream)  # type: ignore[arg-type]
    entries = [ModelEntry(name=MODEL, engine="openai", url=up.v1, context_length=4096)]
    gateway = serve_in_thread(create_app(Settings(models=entries)))
    yield Fx(gateway, upstream)
    gateway.stop()
    up.stop()


def chat_answer(message: dict[str, Any], **choice: Any) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", **choice}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
    }


def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": MODEL, "choices": choices, **extra}


# --- sanity: the default policy does mask these addresses -----------------------------------------------------


def test_sanity_content_is_masked_both_ways(fx: Fx) -> None:
    fx.upstream.answer = chat_answer({"role": "assistant", "content": f"write to {SAID}"})
    r = fx.post("/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": f"hi {EMAIL}"}]})
    assert r.status_code == 200, r.text
    assert EMAIL not in json.dumps(fx.upstream.received[-1])
    assert SAID not in r.text


# --- input bypasses -----------------------------------------------------------------------------------------


def test_assistant_reasoning_content_in_history_is_screened(fx: Fx) -> None:
    # vLLM reasoning-model chat templates render earlier turns' reasoning_content into the prompt
    fx.upstream.answer = chat_answer({"role": "assistant", "content": "ok"})
    messages = [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris.", "reasoning_content": f"Note for the team: {EMAIL}"},
        {"role": "user", "content": "Tell me more about the city."},
    ]
    r = fx.post("/chat/completions", {"model": MODEL, "messages": messages})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert EMAIL not in json.dumps(fx.upstream.received[-1]), "unscreened reasoning_content reached the upstream"


def test_completion_suffix_is_screened(fx: Fx) -> None:
    fx.upstream.answer = {
        "id": "x",
        "object": "text_completion",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "text": "ok", "finish_reason": "stop", "logprobs": None}],
    }
    r = fx.post("/completions", {"model": MODEL, "prompt": "def f():", "suffix": f"# mail {EMAIL}"})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert EMAIL not in json.dumps(fx.upstream.received[-1]), "suffix text reached the upstream unscreened"


def test_tool_description_is_screened(fx: Fx) -> None:
    fx.upstream.answer = chat_answer({"role": "assistant", "content": "ok"})
    tools = [{"type": "function", "function": {"name": "f", "description": f"mail {EMAIL}", "parameters": {}}}]
    r = fx.post("/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "tools": tools})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        assert EMAIL not in json.dumps(fx.upstream.received[-1]), "tool description reached the upstream unscreened"


# --- output bypasses ----------------------------------------------------------------------------------------


def test_legacy_function_call_arguments_are_screened(fx: Fx) -> None:
    message = {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": f'{{"to": "{SAID}"}}'}}
    fx.upstream.answer = chat_answer(message, finish_reason="function_call")
    r = fx.post("/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code in (200, 502), r.text
    assert SAID not in r.text, "function_call arguments reached the client unscreened"


def test_streamed_legacy_function_call_arguments_are_screened(fx: Fx) -> None:
    fx.upstream.events = [
        chunk([{"index": 0, "delta": {"role": "assistant", "function_call": {"name": "f", "arguments": SAID}}}]),
        chunk([{"index": 0, "delta": {}, "finish_reason": "function_call"}]),
    ]
    r = fx.post("/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True})
    assert SAID not in r.text, "streamed function_call arguments reached the client unscreened"


def test_top_logprobs_alternatives_do_not_leak_when_text_unchanged(fx: Fx) -> None:
    alt = [{"token": SAID, "logprob": -1.0, "bytes": None}]
    logprobs = {"content": [{"token": "ok", "logprob": -0.1, "bytes": None, "top_logprobs": alt}], "refusal": None}
    fx.upstream.answer = chat_answer({"role": "assistant", "content": "ok"}, logprobs=logprobs)
    r = fx.post(
        "/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "logprobs": True, "top_logprobs": 1},
    )
    assert r.status_code == 200, r.text
    assert SAID not in r.text, "an unscreened top_logprobs alternative reached the client"


# --- malformed upstream: OpenAI envelopes, not 500s -----------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        [1, 2],
        {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1.5},
        },
        {
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "content": "ok",
                        "tool_calls": [{"function": {"name": "f", "arguments": "{}"}, "index": "x"}],
                    },
                    "finish_reason": "stop",
                }
            ]
        },
    ],
    ids=["list-body", "float-usage", "str-index"],
)
def test_malformed_whole_answer_is_502(fx: Fx, answer: Any) -> None:
    fx.upstream.answer = answer  # type: ignore[assignment]
    r = fx.post("/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code in (200, 502), r.text
    if r.status_code == 502:
        assert "error" in r.json()


def test_stream_tail_with_non_integer_tool_index_is_not_an_internal_error(fx: Fx) -> None:
    fx.upstream.events = [
        chunk(
            [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": "a",
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": '{"to": "carol.wh'},
                            }
                        ]
                    },
                }
            ]
        ),
        chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]),
    ]
    r = fx.post("/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True})
    assert "invalid literal for int" not in r.text and "internal" not in r.text.lower(), r.text


def test_stream_finish_with_null_delta_and_held_tail(fx: Fx) -> None:
    fx.upstream.events = [
        chunk([{"index": 0, "delta": {"role": "assistant", "content": "mail carol.white@exa"}}]),
        chunk([{"index": 0, "delta": None, "finish_reason": "stop"}]),
    ]
    r = fx.post("/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True})
    assert "internal" not in r.text.lower() and "NoneType" not in r.text, r.text
    assert '"finish_reason":"stop"' in r.text, r.text


def test_n2_stream_cut_before_second_choice_finishes_is_reported(fx: Fx) -> None:
    # choice 1's text is held back by its screen; the stream ends with only choice 0 finished
    fx.upstream.events = [
        chunk(
            [
                {"index": 0, "delta": {"content": "Paris is nice."}},
                {"index": 1, "delta": {"content": "The weather is mild"}},
            ]
        ),
        chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
    ]
    r = fx.post(
        "/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "Tell me about France."}], "n": 2, "stream": True},
    )
    assert r.status_code == 200, r.text
    # choice 1 never finished: either an error event, or at least its text is not silently dropped
    assert '"error"' in r.text or "mild" in r.text, r.text


def test_upstream_stream_error_message_is_not_passed_on_unscreened(fx: Fx) -> None:
    fx.upstream.events = [
        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}]),
        {"error": {"message": f"tool parser failed on output: send to {SAID}", "type": "server_error"}},
    ]
    r = fx.post(
        "/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "Tell me about France."}], "stream": True},
    )
    assert SAID not in r.text, r.text


def test_upstream_error_status_message_is_not_passed_on_unscreened(fx: Fx) -> None:
    fx.upstream.status = 400
    fx.upstream.answer = {
        "error": {"message": f"could not parse tool call in output: {SAID}", "type": "invalid_request_error"}
    }
    try:
        r = fx.post(
            "/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "Tell me about France."}]}
        )
    finally:
        fx.upstream.status = 200
    assert r.status_code == 400, r.text
    assert SAID not in r.text, r.text


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"1e400"])
def test_non_finite_number_in_an_unknown_field_is_a_4xx_not_500(fx: Fx, literal: bytes) -> None:
    # FastAPI's json.loads accepts these; the pass-through re-parses the body with orjson, which does not
    fx.upstream.answer = chat_answer({"role": "assistant", "content": "ok"})
    raw = (
        b'{"model": "up", "messages": [{"role": "user", "content": "Tell me about France."}], "foo": ' + literal + b"}"
    )
    r = httpx.post(
        fx.gateway.v1 + "/chat/completions", content=raw, headers={"content-type": "application/json"}, timeout=60
    )
    assert r.status_code < 500, r.text


def test_stream_finish_with_null_tool_calls_and_held_arguments_tail(fx: Fx) -> None:
    # OpenAI-compatible servers commonly send explicit nulls in the final delta
    fx.upstream.events = [
        chunk(
            [
                {
                    "index": 0,
                    "delta": {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": '{"to": "carol.wh'},
                            }
                        ],
                    },
                }
            ]
        ),
        chunk([{"index": 0, "delta": {"content": None, "tool_calls": None}, "finish_reason": "tool_calls"}]),
    ]
    r = fx.post(
        "/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "Tell me about France."}], "stream": True},
    )
    assert "internal_error" not in r.text, r.text
    assert '"finish_reason":"tool_calls"' in r.text, r.text
