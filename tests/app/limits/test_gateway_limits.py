"""Limits through the real API (CPU engine, shared Redis): headers, 429s, reservations and refunds, no leaks."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis

from guardserve.app.limits.model import Scope
from guardserve.app.limits.redis_limiter import scope_keys
from guardserve.app.limits.settings import Limits
from guardserve.models.engine import ChatMessage, GenerationRequest, SamplingParams
from guardserve.models.tokens import TokenizerCounter
from tests.conftest import TINY
from tests.support.access import create_key, secure_gateway
from tests.support.redis import SHARED_URL
from tests.support.servers import LiveServer, wait_until

pytestmark = pytest.mark.usefixtures("needs_shared_redis")

HELLO = [{"role": "user", "content": "Hello there, how are you today?"}]


@pytest.fixture(scope="module")
def limited(tiny_checkpoint: Path) -> Iterator[tuple[LiveServer, str]]:
    tenants = {"small": Limits(requests_per_minute=3)}
    with secure_gateway(tiny_checkpoint, SHARED_URL, tenants=tenants) as server:
        yield server


@pytest.fixture(scope="module")
def store() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(SHARED_URL)
    yield client
    client.close()


def scope_key(prefix: str, tenant: str, key_id: str, which: int) -> str:
    return scope_keys(prefix, tenant, Scope("key", key_id, Limits()), "")[which]


def window_tokens(store: redis.Redis, prefix: str, key: dict[str, Any]) -> int:
    return int(store.get(scope_key(prefix, key["tenant"], key["id"], 1)) or 0)


def slots(store: redis.Redis, prefix: str, key: dict[str, Any]) -> int:
    return int(store.zcard(scope_key(prefix, key["tenant"], key["id"], 2)))


def test_headers_on_whole_and_streamed_responses(limited: tuple[LiveServer, str]) -> None:
    server, _ = limited
    key = create_key(server, limits={"requests_per_minute": 10, "tokens_per_minute": 5000})
    client = openai.OpenAI(base_url=server.v1, api_key=key["key"], max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model=TINY, messages=HELLO, max_tokens=4)
    assert raw.headers["x-ratelimit-limit-requests"] == "10"
    assert raw.headers["x-ratelimit-remaining-requests"] == "9"
    assert raw.headers["x-ratelimit-limit-tokens"] == "5000"
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) < 5000
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    with client.chat.completions.with_streaming_response.create(
        model=TINY, messages=HELLO, max_tokens=4, stream=True
    ) as stream:
        assert stream.headers["x-ratelimit-remaining-requests"] == "8"
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert b"[DONE]" in stream.read()


def test_429_with_retry_after_and_the_openai_type(limited: tuple[LiveServer, str]) -> None:
    server, _ = limited
    key = create_key(server, limits={"requests_per_minute": 2})
    client = openai.OpenAI(base_url=server.v1, api_key=key["key"], max_retries=0)
    for _ in range(2):
        client.completions.create(model=TINY, prompt="hi", max_tokens=1)
    with pytest.raises(openai.RateLimitError) as err:
        client.completions.create(model=TINY, prompt="hi", max_tokens=1)
    response = err.value.response
    assert response.status_code == 429 and 55 <= int(response.headers["retry-after"]) <= 60
    assert response.json()["error"]["type"] == "rate_limit_exceeded"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    metrics = httpx.get(f"{server.url}/metrics").text  # recorded for Prometheus too
    assert 'guardserve_ratelimit_decisions_total{limit="requests",result="limited"}' in metrics
    assert 'guardserve_ratelimit_decisions_total{limit="all",result="allowed"}' in metrics


def test_tenant_limit_spans_keys(limited: tuple[LiveServer, str]) -> None:
    server, _ = limited
    a, b = create_key(server, "small"), create_key(server, "small")
    statuses = []
    for key in (a, b, a, b):
        body = {"model": TINY, "prompt": "x", "max_tokens": 1}
        r = httpx.post(f"{server.v1}/completions", json=body, headers={"Authorization": f"Bearer {key['key']}"})
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert "tenant 'small'" in r.json()["error"]["message"]
    assert statuses == [200, 200, 200, 429]


def test_tokens_are_reserved_while_streaming_and_refunded_after(
    limited: tuple[LiveServer, str], store: redis.Redis, tiny_checkpoint: Path
) -> None:
    server, prefix = limited
    key = create_key(server, limits={"tokens_per_minute": 100_000})
    client = openai.OpenAI(base_url=server.v1, api_key=key["key"], max_retries=0)
    request = GenerationRequest("r", TINY, SamplingParams(), messages=(ChatMessage("user", HELLO[0]["content"]),))
    prompt = TokenizerCounter.from_dir(tiny_checkpoint).count(request)
    stream = client.chat.completions.create(
        model=TINY, messages=HELLO, max_tokens=1500, stream=True, extra_body={"ignore_eos": True}
    )
    next(iter(stream))
    assert window_tokens(store, prefix, key) == prompt + 1500  # reserved at admission: prompt + max_tokens
    stream.close()  # hang up early: the unused part comes back
    wait_until(lambda: window_tokens(store, prefix, key) < prompt + 1500)
    left = window_tokens(store, prefix, key)
    assert prompt <= left < prompt + 1500
    whole = client.chat.completions.create(model=TINY, messages=HELLO, max_tokens=20, extra_body={"ignore_eos": True})
    assert whole.usage is not None and whole.usage.prompt_tokens == prompt
    wait_until(lambda: window_tokens(store, prefix, key) == left + whole.usage.total_tokens)  # type: ignore[union-attr]


def test_engine_errors_refund_everything(limited: tuple[LiveServer, str], store: redis.Redis) -> None:
    server, prefix = limited
    key = create_key(server, limits={"tokens_per_minute": 100_000})
    client = openai.OpenAI(base_url=server.v1, api_key=key["key"], max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:  # prompt + max_tokens over the 2048 context: the engine says
        client.completions.create(model=TINY, prompt="word " * 200, max_tokens=2000)
    assert err.value.code == "context_length_exceeded"
    wait_until(lambda: window_tokens(store, prefix, key) == 0)


def hang_up(server: LiveServer, key: str, stream: bool) -> None:
    body = json.dumps({"model": TINY, "messages": HELLO, "max_tokens": 2000, "ignore_eos": True, "stream": stream})
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode() + body.encode())
        if stream:
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        else:  # close once this request holds its slot (and is generating)
            wait_until(lambda: server.app.state.models[TINY].engine.inflight > 0, what="a request generating")


def test_no_concurrency_slot_leaks_after_cancellations(limited: tuple[LiveServer, str], store: redis.Redis) -> None:
    server, prefix = limited
    key = create_key(server, limits={"concurrent": 3, "tokens_per_minute": 1_000_000})
    threads = [
        threading.Thread(target=hang_up, args=(server, key["key"], i % 2 == 0)) for i in range(3)
    ]  # three at once: every slot taken, then every client gone
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    limiter = server.app.state.access.limiter

    def released() -> bool:  # a disconnect releases its slot just after the socket closes, not before
        return slots(store, prefix, key) == 0 and limiter.primary.active == 0

    for i in range(6):  # and again, one after another, each once the one before has given its slot back
        wait_until(released, what="every slot released")
        hang_up(server, key["key"], stream=i % 2 == 0)
    wait_until(released, what="every slot released")
    # all three slots usable again at once (streams that run until closed: one that ended by itself, at its
    # end-of-sequence, gave its slot back before the count; CI met that once)
    client = openai.OpenAI(base_url=server.v1, api_key=key["key"], max_retries=0)
    running = {"max_tokens": 2000, "stream": True, "extra_body": {"ignore_eos": True}}
    streams = [client.chat.completions.create(model=TINY, messages=HELLO, **running) for _ in range(3)]  # type: ignore[call-overload]
    assert slots(store, prefix, key) == 3
    for s in streams:
        s.close()
    wait_until(lambda: slots(store, prefix, key) == 0)
