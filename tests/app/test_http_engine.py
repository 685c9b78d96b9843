"""The OpenAI-HTTP engine against a real upstream: `guardserve engine` in its own process."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from guardserve.app.main import create_app
from guardserve.app.settings import Settings
from guardserve.models.engine import EngineTimeoutError, EngineUnavailableError, InvalidRequestError, UpstreamError
from guardserve.models.openai_http import _error_from_response
from guardserve.models.registry import ModelEntry
from tests.conftest import NO_GUARDS, TINY
from tests.support.servers import EngineProcess, LiveServer, serve_in_thread, start_engine_process

MSG = [{"role": "user", "content": "hello upstream"}]


@pytest.fixture(scope="module")
def client(http_gateway: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=http_gateway.v1, api_key="unused", max_retries=0)


def test_chat_round_trip_matches_the_upstream(client: openai.OpenAI, upstream: EngineProcess) -> None:
    direct = openai.OpenAI(base_url=upstream.v1, api_key="unused", max_retries=0)
    params = dict(messages=MSG, max_tokens=20, temperature=1.0, seed=3, extra_body={"ignore_eos": True})
    via_gateway = client.chat.completions.create(model=TINY, **params)  # type: ignore[call-overload]
    straight = direct.chat.completions.create(model=upstream.name, **params)  # type: ignore[call-overload]
    assert via_gateway.model == TINY
    assert via_gateway.choices[0].message.content == straight.choices[0].message.content
    assert via_gateway.usage is not None and straight.usage is not None
    assert via_gateway.usage.model_dump() == straight.usage.model_dump()


def test_stream_passes_through_token_by_token(client: openai.OpenAI) -> None:
    params = dict(model=TINY, messages=MSG, max_tokens=25, temperature=1.0, seed=4, extra_body={"ignore_eos": True})
    whole = client.chat.completions.create(**params)  # type: ignore[call-overload]
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **params))  # type: ignore[call-overload]
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) >= 10  # streamed, not buffered into one piece
    assert "".join(c.choices[0].delta.content or "" for c in content_chunks) == whole.choices[0].message.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 25
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens  # type: ignore[union-attr]


def test_completions_through_upstream(client: openai.OpenAI) -> None:
    result = client.completions.create(model=TINY, prompt="abc", max_tokens=7, extra_body={"ignore_eos": True})
    assert result.usage is not None and result.usage.completion_tokens == 7
    streamed = list(
        client.completions.create(model=TINY, prompt="abc", max_tokens=7, stream=True, extra_body={"ignore_eos": True})
    )
    assert streamed[-1].choices[0].finish_reason == "length"


def test_upstream_client_errors_keep_their_status_and_message(http_gateway: LiveServer) -> None:
    body = {"model": TINY, "messages": [{"role": "user", "content": "word " * 3000}]}
    for stream in (False, True):
        response = httpx.post(f"{http_gateway.v1}/chat/completions", json={**body, "stream": stream}, timeout=30)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "context_length_exceeded" and "2048" in error["message"]


def test_what_the_upstream_refuses_comes_back_as_its_400(http_gateway: LiveServer) -> None:
    """The gateway forwards `n` and `tools` to an `openai` upstream (pass-through); `guardserve engine` (a CPU
    engine) refuses them itself, and its 400 reaches the caller with the upstream's param and code."""
    for extra, param in (({"n": 2}, "n"), ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools")):
        for stream in (False, True):
            body = {"model": TINY, "messages": MSG, "stream": stream, **extra}
            response = httpx.post(f"{http_gateway.v1}/chat/completions", json=body, timeout=60)
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["code"] == "unsupported_parameter" and error["param"] == param


def test_ready_reports_the_upstream(http_gateway: LiveServer) -> None:
    report = httpx.get(f"{http_gateway.url}/ready").json()
    assert report["status"] == "ready"
    assert report["models"][TINY] == {"status": "ready", "ok": True, "inflight": 0}
    assert "127.0.0.1" not in str(report), "no upstream URL on the unauthenticated /ready"


def test_upstream_dying_mid_stream_ends_with_an_sse_error(tiny_checkpoint: Path, tmp_path: Path) -> None:
    doomed = start_engine_process(tiny_checkpoint, name="doomed", log=tmp_path / "doomed.log")
    entry = ModelEntry(name="doomed", engine="openai", url=doomed.v1, context_length=2048)
    server = serve_in_thread(create_app(Settings(models=[entry], guardrails=NO_GUARDS)))
    try:
        body = {"model": "doomed", "messages": MSG, "max_tokens": 2000, "ignore_eos": True, "stream": True}
        with httpx.stream("POST", f"{server.v1}/chat/completions", json=body, timeout=30) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(lines).startswith("data: ")
            doomed.process.kill()
            events = [line for line in lines if line]
        assert events[-1] == "data: [DONE]"
        assert events[-2].startswith('data: {"error"')
        assert '"server_error"' in events[-2]
        after = httpx.post(f"{server.v1}/chat/completions", json={**body, "stream": False}, timeout=30)
        assert after.status_code == 503 and "retry-after" in after.headers
    finally:
        server.stop()
        doomed.stop()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            b'{"error": {"message": "bad", "type": "invalid_request_error", "param": "x", "code": "c"}}',
            InvalidRequestError,
        ),
        (
            400,
            b'{"object": "error", "message": "vllm style", "type": "BadRequestError", "code": 400}',
            InvalidRequestError,
        ),
        (422, b'{"detail": []}', InvalidRequestError),
        (429, b"slow down", EngineUnavailableError),
        (503, b'{"error": {"message": "overloaded"}}', EngineUnavailableError),
        (504, b"", EngineTimeoutError),
        (404, b'{"error": {"message": "The model does not exist."}}', UpstreamError),
        (500, b"<html>oops</html>", UpstreamError),
    ],
)
def test_upstream_error_mapping(status: int, body: bytes, expected: type[Exception]) -> None:
    error = _error_from_response(status, {"retry-after": "7"}, body)
    assert type(error) is expected
    if isinstance(error, EngineUnavailableError):
        assert error.retry_after == 7.0
    if isinstance(error, InvalidRequestError):
        assert error.status == 400
