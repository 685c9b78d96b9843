"""The error matrix: every bad input gets OpenAI's envelope with the right status, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from guardserve.app.main import create_app
from guardserve.app.settings import Settings
from guardserve.models.cpu.config import CPUEngineConfig
from guardserve.models.registry import ModelEntry
from tests.conftest import NO_GUARDS, TINY, cpu_settings
from tests.support.servers import LiveServer, free_port, serve_in_thread

MSG = [{"role": "user", "content": "hi"}]


def post(server: LiveServer, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.v1}{path}", timeout=30, **kwargs)


def assert_envelope(
    response: httpx.Response, status: int, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] in ("invalid_request_error", "server_error")
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"model": TINY, "messages": []}, "invalid_value", "messages"),
        ({"model": TINY}, "missing_required_parameter", "messages"),
        ({"messages": MSG}, "missing_required_parameter", "model"),
        ({"model": TINY, "messages": "hello"}, "invalid_type", "messages"),
        ({"model": TINY, "messages": MSG, "max_tokens": "5"}, "invalid_type", "max_tokens"),
        ({"model": TINY, "messages": MSG, "max_tokens": 2.5}, "invalid_type", "max_tokens"),
        ({"model": TINY, "messages": MSG, "max_tokens": -1}, "invalid_value", "max_tokens"),
        ({"model": TINY, "messages": MSG, "max_tokens": 0}, "invalid_value", "max_tokens"),
        ({"model": TINY, "messages": MSG, "max_tokens": 10**12}, "invalid_value", "max_tokens"),
        ({"model": TINY, "messages": MSG, "max_completion_tokens": 2048}, "invalid_value", "max_tokens"),
        ({"model": TINY, "messages": MSG, "temperature": "hot"}, "invalid_type", "temperature"),
        ({"model": TINY, "messages": MSG, "temperature": 3}, "invalid_value", "temperature"),
        ({"model": TINY, "messages": MSG, "top_p": 0}, "invalid_value", "top_p"),
        ({"model": TINY, "messages": MSG, "stream": "yes"}, "invalid_type", "stream"),
        ({"model": TINY, "messages": MSG, "n": 2}, "unsupported_parameter", "n"),
        ({"model": TINY, "messages": MSG, "logprobs": True}, "unsupported_parameter", "logprobs"),
        ({"model": TINY, "messages": MSG, "stop": ["a", "b", "c", "d", "e"]}, "invalid_value", "stop"),
        ({"model": TINY, "messages": MSG, "stop": [""]}, "invalid_value", "stop"),
        (
            {"model": TINY, "messages": MSG, "stream_options": {"include_usage": True}},
            "unsupported_parameter",
            "stream_options",
        ),
        # the CPU engine serves text chat: what only an upstream serves is refused by name (engine "openai" forwards it)
        ({"model": TINY, "messages": [{"role": "tool", "content": "x"}]}, "unsupported_parameter", "messages"),
        ({"model": TINY, "messages": [{"role": "robot", "content": "x"}]}, "invalid_value", "messages.0.role"),
        ({"model": TINY, "messages": [{"content": "x"}]}, "missing_required_parameter", "messages.0.role"),
        (
            {
                "model": TINY,
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            },
            "unsupported_parameter",
            "messages",
        ),
        ({"model": TINY, "messages": [{"role": "user", "content": [{"type": "hologram"}]}]}, None, None),
        ({"model": TINY, "messages": MSG, "tool_choice": "auto"}, "unsupported_parameter", "tool_choice"),
        ({"model": TINY, "messages": MSG, "top_logprobs": 2}, "unsupported_parameter", "top_logprobs"),
        ({"model": TINY, "messages": MSG, "logit_bias": {"5": 1.0}}, "unsupported_parameter", "logit_bias"),
        (
            {"model": TINY, "messages": MSG, "response_format": {"type": "json_object"}},
            "unsupported_parameter",
            "response_format",
        ),
        ({"model": TINY, "messages": MSG, "tools": [{"type": "function"}]}, "unsupported_parameter", "tools"),
    ],
)
def test_chat_bad_bodies(gateway: LiveServer, body: dict[str, Any], code: str | None, param: str | None) -> None:
    assert_envelope(post(gateway, "/chat/completions", json=body), 400, code, param)


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"model": TINY, "prompt": ["a", "b"]}, "unsupported_parameter", "prompt"),
        ({"model": TINY, "prompt": [1, 2, 3]}, "unsupported_parameter", "prompt"),
        ({"model": TINY, "prompt": [1, "a"]}, "invalid_type", None),
        ({"model": TINY, "prompt": "x", "best_of": 2}, "unsupported_parameter", "best_of"),
        ({"model": TINY, "prompt": "x", "max_tokens": -5}, "invalid_value", "max_tokens"),
        ({"model": TINY}, "missing_required_parameter", "prompt"),
        ({"model": TINY, "prompt": ""}, "empty_prompt", "prompt"),
    ],
)
def test_completion_bad_bodies(gateway: LiveServer, body: dict[str, Any], code: str | None, param: str | None) -> None:
    assert_envelope(post(gateway, "/completions", json=body), 400, code, param)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b"[]", "invalid_json"),
        (b"42", "invalid_json"),
        (b'{"model": "tiny", "messages": [}', "invalid_json"),
        (b"\xc7v", "invalid_json"),  # not UTF-8 (schemathesis found it: a 500 once)
        (b'{"model": "\xed\xa0\x80"}', "invalid_value"),  # a surrogate in UTF-8 bytes: "model" is not Unicode
    ],
)
@pytest.mark.parametrize("path", ["/chat/completions", "/completions", "/embeddings"])
def test_malformed_json(gateway: LiveServer, path: str, raw: bytes, code: str) -> None:
    response = post(gateway, path, content=raw, headers={"content-type": "application/json"})
    assert_envelope(response, 400, code)


def test_form_body_is_a_400(gateway: LiveServer) -> None:
    assert_envelope(post(gateway, "/chat/completions", data={"model": TINY}), 400)


LONE = "\ud800 hi"  # JSON may carry a lone surrogate ("\\ud800"); no guard or encoder can handle it


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/chat/completions", {"model": TINY, "messages": [{"role": "user", "content": LONE}]}, "messages.0.content"),
        (
            "/chat/completions",
            {"model": TINY, "messages": [{"role": "user", "content": [{"type": "text", "text": LONE}]}]},
            "messages.0.content.0.text",
        ),
        ("/chat/completions", {"model": TINY, "messages": MSG, "stop": [LONE]}, "stop"),
        ("/chat/completions", {"model": TINY, "messages": MSG, "user": LONE}, "user"),
        ("/completions", {"model": TINY, "prompt": LONE}, "prompt"),
        ("/completions", {"model": LONE, "prompt": "x"}, "model"),
        ("/moderations", {"input": ["fine", LONE]}, "input"),
    ],
)
def test_invalid_unicode_is_a_400_naming_the_field(
    gateway: LiveServer, path: str, body: dict[str, Any], param: str
) -> None:
    raw = json.dumps(body).encode()  # ensure_ascii: the surrogate travels as the escape "\\ud800"
    assert b"\\ud800" in raw
    response = post(gateway, path, content=raw, headers={"content-type": "application/json"})
    error = assert_envelope(response, 400, "invalid_value", param)
    assert "unicode" in error["message"].lower()


@pytest.mark.parametrize(
    "headers", [{}, {"content-type": "application/x-www-form-urlencoded"}, {"content-type": "text/plain"}]
)
def test_json_is_read_whatever_the_content_type(gateway: LiveServer, headers: dict[str, str]) -> None:
    """``curl -d '{...}'`` sends a form content type (or none with --data-binary and -H ''): read JSON anyway."""
    raw = json.dumps({"model": TINY, "messages": MSG, "max_tokens": 2}).encode()
    response = httpx.post(f"{gateway.v1}/chat/completions", content=raw, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "chat.completion"


def test_unknown_model_is_404(gateway: LiveServer) -> None:
    error = assert_envelope(
        post(gateway, "/chat/completions", json={"model": "nope", "messages": MSG}),
        404,
        "model_not_found",
        "model",
    )
    assert "nope" in error["message"]
    assert_envelope(httpx.get(f"{gateway.v1}/models/nope"), 404, "model_not_found")


def test_unknown_route_and_method(gateway: LiveServer) -> None:
    assert_envelope(httpx.get(f"{gateway.v1}/audio/speech"), 404, "unknown_url")
    wrong_method = httpx.get(f"{gateway.v1}/chat/completions")
    assert_envelope(wrong_method, 405, "method_not_allowed")
    assert wrong_method.headers["allow"] == "POST"


def test_body_over_limit_is_413(gateway: LiveServer) -> None:
    big = {"model": TINY, "messages": [{"role": "user", "content": "x" * 2_000_000}]}
    assert_envelope(post(gateway, "/chat/completions", json=big), 413, "request_too_large")


def test_chunked_body_over_limit_is_413(gateway: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "tiny", "messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}]}'

    response = post(gateway, "/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_envelope(response, 413, "request_too_large")


def test_prompt_over_context_says_by_how_much(gateway: LiveServer) -> None:
    body = {"model": TINY, "messages": [{"role": "user", "content": "word " * 3000}]}
    for stream in (False, True):
        error = assert_envelope(
            post(gateway, "/chat/completions", json={**body, "stream": stream}),
            400,
            "context_length_exceeded",
        )
        assert "2048" in error["message"] and "Shorten the prompt by at least" in error["message"]


def test_openai_client_raises_typed_errors(gateway: LiveServer) -> None:
    client = openai.OpenAI(base_url=gateway.v1, api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=MSG)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=TINY, messages=MSG, n=3)  # type: ignore[arg-type]
    assert err.value.code == "unsupported_parameter"


def test_engine_unreachable_is_503_with_retry_after() -> None:
    dead = ModelEntry(name="gone", engine="openai", url=f"http://127.0.0.1:{free_port()}/v1", context_length=512)
    server = serve_in_thread(create_app(Settings(models=[dead], guardrails=NO_GUARDS)))
    try:
        for stream in (False, True):
            response = post(server, "/chat/completions", json={"model": "gone", "messages": MSG, "stream": stream})
            assert_envelope(response, 503, "engine_unavailable")
            assert int(response.headers["retry-after"]) >= 1
        ready = httpx.get(f"{server.url}/ready")
        assert ready.status_code == 503 and ready.json()["models"]["gone"]["ok"] is False
        assert "retry-after" in ready.headers
    finally:
        server.stop()


def test_engine_at_capacity_is_503(tiny_checkpoint: Path) -> None:
    settings = cpu_settings(tiny_checkpoint, cpu=CPUEngineConfig(max_batch=1, max_waiting=0))
    server = serve_in_thread(create_app(settings))
    try:
        body = {"model": TINY, "messages": MSG, "max_tokens": 2000, "ignore_eos": True, "stream": True}
        with httpx.stream("POST", f"{server.v1}/chat/completions", json=body, timeout=30) as busy:
            assert busy.status_code == 200
            lines = busy.iter_lines()  # keep a reference: a collected iterator closes the connection
            next(lines)
            response = post(server, "/chat/completions", json={"model": TINY, "messages": MSG})
            assert_envelope(response, 503, "engine_unavailable")
            assert response.headers["retry-after"] == "1"
    finally:
        server.stop()


def test_an_error_message_with_a_lone_surrogate_is_still_encodable() -> None:
    from guardserve.app.errors import APIError
    from guardserve.app.serving.streams import sse_error

    error = APIError(400, "upstream said \ud800", param="p\udfff", code="c\ud800")
    assert error.message == "upstream said \ufffd" and error.param == "p\ufffd" and error.code == "c\ufffd"
    assert error.response().status_code == 400
    assert b"\xef\xbf\xbd" in sse_error(error)  # U+FFFD in UTF-8
