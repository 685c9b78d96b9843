"""Sampling parameters through the real gateway: poison values fail nobody, unset values stay unset upstream."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from guardserve.app.main import create_app
from guardserve.app.settings import Settings
from guardserve.models.registry import ModelEntry
from tests.conftest import NO_GUARDS, TINY
from tests.support.asgi import read_body
from tests.support.fake_upstream import FakeUpstream
from tests.support.servers import LiveServer, serve_in_thread

POISON: list[dict[str, Any]] = [{"temperature": 1e-300}, {"top_p": 1e-46}, {"temperature": 1e-38, "top_p": 1e-46}]
GREEDY_PROMPT = "the cat sat on"


@pytest.fixture(scope="module")
def client(gateway: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key="unused", max_retries=0, timeout=120)


def normal_params(i: int) -> dict[str, Any]:
    return dict(
        model=TINY,
        messages=[{"role": "user", "content": f"tenant B, request {i}"}],
        max_tokens=40,
        temperature=1.0,
        seed=300 + i,
        extra_body={"ignore_eos": True},
    )


def test_poison_requests_interleaved_with_normal_streams_fail_nobody(client: openai.OpenAI) -> None:
    """Tenant A sends temperature 1e-300 / top_p 1e-46 while tenant B streams: every stream of B completes with
    its normal answer, and A gets 200 with the greedy answer (as vLLM treats them)."""
    normals = [normal_params(i) for i in range(6)]
    expected = [client.chat.completions.create(**p).choices[0].message.content for p in normals]
    greedy = client.completions.create(model=TINY, prompt=GREEDY_PROMPT, max_tokens=12, temperature=0.0)
    assert greedy.choices[0].text.strip()

    def stream(params: dict[str, Any]) -> tuple[str, str | None, int | None]:
        chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **params))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        usage = chunks[-1].usage
        return text, finish[-1] if finish else None, usage.completion_tokens if usage else None

    def poison(i: int) -> str:
        params = dict(model=TINY, prompt=GREEDY_PROMPT, max_tokens=12, **POISON[i % len(POISON)])
        if i % 2:
            chunks = list(client.completions.create(stream=True, **params))
            return "".join(c.choices[0].text for c in chunks if c.choices)
        return str(client.completions.create(**params).choices[0].text)

    with ThreadPoolExecutor(max_workers=18) as pool:
        poisons = [pool.submit(poison, i) for i in range(6)]
        streams = [pool.submit(stream, p) for p in normals]
        poisons += [pool.submit(poison, i) for i in range(6, 12)]
        streamed = [f.result(timeout=300) for f in streams]
        poisoned = [f.result(timeout=300) for f in poisons]
    assert streamed == [(text, "length", 40) for text in expected]
    assert poisoned == [greedy.choices[0].text] * 12


# --- the HTTP engine sends only what the client set ------------------------------------------------------------


class RecordingUpstream:
    """The fake upstream, keeping every request body it was sent."""

    def __init__(self) -> None:
        self.app = FakeUpstream("fake")
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body:
            self.bodies.append(orjson.loads(body))

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[openai.OpenAI, RecordingUpstream]]:
    upstream = RecordingUpstream()
    upstream_server = serve_in_thread(upstream)  # type: ignore[arg-type]
    entry = ModelEntry(name="fake", engine="openai", url=upstream_server.v1, context_length=2048)
    gateway = serve_in_thread(create_app(Settings(models=[entry], guardrails=NO_GUARDS)))
    try:
        yield openai.OpenAI(base_url=gateway.v1, api_key="unused", max_retries=0), upstream
    finally:
        gateway.stop()
        upstream_server.stop()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("route", ["chat", "completions"])
@pytest.mark.parametrize(
    "sampling",
    [{}, {"temperature": 0.3}, {"top_p": 0.5}, {"temperature": 0.0, "top_p": 1.0}],
    ids=["unset", "temperature", "top_p", "both"],
)
def test_http_engine_sends_only_the_sampling_the_client_set(
    recorded: tuple[openai.OpenAI, RecordingUpstream], route: str, stream: bool, sampling: dict[str, float]
) -> None:
    client, upstream = recorded
    before = len(upstream.bodies)
    if route == "chat":
        messages: Any = [{"role": "user", "content": "hi"}]
        result: Any = client.chat.completions.create(model="fake", messages=messages, stream=stream, **sampling)  # type: ignore[call-overload]
    else:
        result = client.completions.create(model="fake", prompt="hi", stream=stream, **sampling)  # type: ignore[call-overload]
    if stream:
        list(result)
    assert len(upstream.bodies) == before + 1
    sent = upstream.bodies[-1]
    assert {k: sent[k] for k in ("temperature", "top_p") if k in sent} == sampling
    assert sent["stream"] is stream and sent["model"] == "fake"
