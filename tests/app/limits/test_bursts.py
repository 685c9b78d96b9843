"""Admission under bursts, through the real API, limits in the shared Redis, ``fail_closed``: a healthy Redis never
yields a false 503 however busy the gateway's loop, a 200-request burst is decided by Redis (no local fallback
decisions), and a storm of clients hanging up leaves no live concurrency lease behind.

Upstreams are the fast fake (``tests/support/fake_upstream.py``): the gateway's own cost is what is under test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from guardserve.app.limits.model import Scope
from guardserve.app.limits.redis_limiter import scope_keys
from guardserve.app.limits.settings import Limits
from guardserve.app.main import create_app
from guardserve.models.registry import ModelEntry
from tests.support.access import create_key, raw_post, secure_settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.metrics import scrape
from tests.support.redis import SHARED_URL, delete_prefix, new_prefix
from tests.support.servers import LiveServer, serve_in_thread
from tests.support.waits import SETTLE_S, STARTUP_S, wait_until

pytestmark = [pytest.mark.usefixtures("needs_shared_redis"), pytest.mark.slow]

HOLD_S = 120.0  # the slow upstream's delay: requests to it stay in flight until their clients hang up


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[LiveServer, str]]:
    fast, slow = serve_in_thread(FakeUpstream("fast")), serve_in_thread(FakeUpstream("slow", delay=HOLD_S))  # type: ignore[arg-type]
    entries = [
        ModelEntry(name=name, engine="openai", url=up.v1, upstream_model=name, context_length=4096)
        for name, up in (("fast", fast), ("slow", slow))
    ]
    prefix = new_prefix()
    settings = secure_settings(entries, SHARED_URL, prefix, failure_mode="fail_closed", lease_seconds=600)
    server = serve_in_thread(create_app(settings))
    try:
        yield server, prefix
    finally:
        server.stop()
        fast.stop()
        slow.stop()
        delete_prefix(SHARED_URL, prefix)


def body(model: str, stream: bool = False) -> bytes:
    payload = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "stream": stream}
    return json.dumps(payload).encode()


def decisions(server: LiveServer) -> dict[str, float]:
    samples = scrape(f"{server.url}/metrics")
    out: dict[str, float] = {}
    for name, value in samples.items():
        if name.startswith("guardserve_ratelimit_decisions_total{"):
            result = name.split('result="', 1)[1].split('"', 1)[0]
            out[result] = out.get(result, 0) + value
    return out


def big_key(server: LiveServer) -> dict[str, Any]:
    limits = {"requests_per_minute": 100_000, "tokens_per_minute": 10_000_000, "concurrent": 1000}
    return create_key(server, limits=limits)


async def burst(server: LiveServer, key: str, count: int, model: str = "fast") -> list[int]:
    async with asyncio.timeout(STARTUP_S):
        return await asyncio.gather(
            *(raw_post(server.port, "/v1/chat/completions", body(model), key) for _ in range(count))
        )


def test_32_concurrent_in_fail_closed_give_no_false_503(gateway: tuple[LiveServer, str]) -> None:
    server, _ = gateway
    key = big_key(server)["key"]
    before = decisions(server)
    statuses = [s for _ in range(5) for s in asyncio.run(burst(server, key, 32))]
    after = decisions(server)
    assert statuses.count(200) == len(statuses), {s: statuses.count(s) for s in set(statuses)}
    assert after.get("fail_closed", 0) == before.get("fail_closed", 0)
    assert after.get("fail_open", 0) == before.get("fail_open", 0)


def test_a_200_request_burst_is_decided_by_redis(gateway: tuple[LiveServer, str]) -> None:
    server, _ = gateway
    key = big_key(server)["key"]
    before = decisions(server)
    statuses = asyncio.run(burst(server, key, 200))
    after = decisions(server)
    assert statuses.count(200) == 200, {s: statuses.count(s) for s in set(statuses)}
    allowed = after.get("allowed", 0) - before.get("allowed", 0)
    assert allowed >= 200  # one decision per request at least (a request may check several limits)
    assert after.get("fail_closed", 0) + after.get("fail_open", 0) == before.get("fail_closed", 0) + before.get(
        "fail_open", 0
    )


def test_a_disconnect_storm_leaves_no_live_lease(gateway: tuple[LiveServer, str]) -> None:
    server, prefix = gateway
    key = big_key(server)
    leases = scope_keys(prefix, key["tenant"], Scope("key", key["id"], Limits()), "")[2]
    store = redis.Redis.from_url(SHARED_URL)

    async def storm() -> None:
        data = body("slow", stream=True)
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {key['key']}\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode()
        writers = []
        for _ in range(200):
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(head + data)
            writers.append(writer)
        await asyncio.gather(*(w.drain() for w in writers))
        await asyncio.to_thread(  # every request admitted and waiting on the slow upstream
            wait_until, lambda: store.zcard(leases) >= 200, SETTLE_S * 4, 0.05, "200 leases held"
        )
        for writer in writers:
            writer.transport.abort()  # hang up without a goodbye

    try:
        asyncio.run(storm())
        wait_until(lambda: store.zcard(leases) == 0, timeout=SETTLE_S * 4, what="every lease released")
        inflight = "guardserve_inflight_requests{}"
        wait_until(lambda: scrape(f"{server.url}/metrics").get(inflight) == 0, what="in-flight back to 0")
    finally:
        store.close()
