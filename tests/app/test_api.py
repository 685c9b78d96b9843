"""The OpenAI API through the official openai client, against the gateway on a real port (CPU engine)."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import TINY
from tests.support.servers import LiveServer


@pytest.fixture(scope="module")
def client(gateway: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key="unused", max_retries=0)


def test_chat_completion(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model=TINY,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        max_tokens=16,
        extra_body={"ignore_eos": True},
    )
    assert result.id.startswith("chatcmpl-")
    assert result.object == "chat.completion"
    assert result.model == TINY
    assert result.created > 1_700_000_000
    choice = result.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason == "length"
    assert result.usage is not None
    assert result.usage.completion_tokens == 16
    assert result.usage.total_tokens == result.usage.prompt_tokens + 16


def test_max_completion_tokens_and_multi_turn(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model=TINY,
        messages=[
            {"role": "developer", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Again"},
        ],
        max_completion_tokens=5,
        extra_body={"ignore_eos": True},
    )
    assert result.usage is not None and result.usage.completion_tokens == 5


def test_stream_matches_non_stream_and_is_framed_like_openai(client: openai.OpenAI) -> None:
    params = dict(
        model=TINY,
        messages=[{"role": "user", "content": "stream please"}],
        max_tokens=30,
        temperature=0.9,
        top_p=0.95,
        seed=42,
        extra_body={"ignore_eos": True},
    )
    whole = client.chat.completions.create(**params)  # type: ignore[call-overload]
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **params))  # type: ignore[call-overload]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and chunks[0].object == "chat.completion.chunk"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 30
    assert all(c.usage is None for c in chunks[:-1])


def test_sse_wire_format(gateway: LiveServer) -> None:
    body = {
        "model": TINY,
        "messages": [{"role": "user", "content": "wire"}],
        "max_tokens": 3,
        "stream": True,
        "ignore_eos": True,
    }
    with httpx.stream("POST", f"{gateway.v1}/chat/completions", json=body, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events[:-1])
    assert '"usage"' not in raw  # only present when stream_options.include_usage is set


def test_seed_reproducible_through_the_api(client: openai.OpenAI) -> None:
    def once(seed: int) -> str | None:
        r = client.chat.completions.create(
            model=TINY,
            messages=[{"role": "user", "content": "seed"}],
            max_tokens=20,
            temperature=1.0,
            seed=seed,
            extra_body={"ignore_eos": True},
        )
        return r.choices[0].message.content

    assert once(5) == once(5)
    assert once(5) != once(6)


def test_stop_sequence_through_the_api(client: openai.OpenAI) -> None:
    params = dict(model=TINY, messages=[{"role": "user", "content": "stops"}], max_tokens=50, temperature=1.0, seed=9)
    params["extra_body"] = {"ignore_eos": True}
    full = client.chat.completions.create(**params).choices[0].message.content  # type: ignore[call-overload]
    assert full and len(full) > 12
    stop = full[8:11]
    cut = client.chat.completions.create(stop=[stop], **params)  # type: ignore[call-overload]
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == full[: full.index(stop)]


def test_completions(client: openai.OpenAI) -> None:
    result = client.completions.create(
        model=TINY, prompt="Once upon a time", max_tokens=8, extra_body={"ignore_eos": True}
    )
    assert result.object == "text_completion" and result.id.startswith("cmpl-")
    assert result.choices[0].finish_reason == "length"
    assert result.usage is not None and result.usage.completion_tokens == 8


def test_completions_default_max_tokens_is_16(client: openai.OpenAI) -> None:
    result = client.completions.create(model=TINY, prompt="x", extra_body={"ignore_eos": True})
    assert result.usage is not None and result.usage.completion_tokens == 16


def test_completions_stream_and_echo(client: openai.OpenAI) -> None:
    params = dict(model=TINY, prompt="Echo me", max_tokens=10, temperature=1.0, seed=1, extra_body={"ignore_eos": True})
    whole = client.completions.create(echo=True, **params)  # type: ignore[call-overload]
    assert whole.choices[0].text.startswith("Echo me")
    chunks = list(client.completions.create(stream=True, echo=True, **params))  # type: ignore[call-overload]
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    listed = client.models.list()
    assert [m.id for m in listed.data] == [TINY]
    model = client.models.retrieve(TINY)
    assert model.id == TINY and model.object == "model" and model.owned_by == "guardserve"
    extra = model.model_extra or {}
    assert extra["trained"] is False and extra["context_length"] == 2048 and extra["engine"] == "cpu"


def test_health_and_ready(gateway: LiveServer) -> None:
    assert httpx.get(f"{gateway.url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{gateway.url}/ready")
    assert ready.status_code == 200
    assert ready.json()["models"][TINY]["ok"] is True


def test_request_id_is_echoed_or_generated(gateway: LiveServer) -> None:
    mine = httpx.get(f"{gateway.url}/health", headers={"X-Request-ID": "trace-123"})
    assert mine.headers["x-request-id"] == "trace-123"
    generated = httpx.get(f"{gateway.url}/health", headers={"X-Request-ID": "bad id with spaces" + "x" * 200})
    assert len(generated.headers["x-request-id"]) == 32
