"""Exactness across replicas: 4 gateway processes share one key limited to 100 requests/min; 2,000 concurrent
requests spread over them; exactly 100 get through, and afterwards no slot or reservation is left."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from guardserve.app.auth.service import KeyService
from guardserve.app.auth.store import RedisKeyStore
from guardserve.app.limits.model import Scope
from guardserve.app.limits.redis_limiter import scope_keys
from guardserve.app.limits.settings import Limits
from guardserve.app.store.backend import RedisBackend
from guardserve.app.store.connection import connect
from guardserve.app.store.settings import RedisSettings
from tests.support.access import PEPPER, raw_post, start_gateways
from tests.support.fake_upstream import USAGE, FakeUpstream
from tests.support.redis import SHARED_URL, delete_prefix, new_prefix
from tests.support.servers import LiveServer, serve_in_thread

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("needs_shared_redis"),
]

LIMIT, REQUESTS, PROCESSES = 100, 2000, 4


@pytest.fixture
def upstream() -> Iterator[tuple[LiveServer, FakeUpstream]]:
    fake = FakeUpstream("fake")
    server = serve_in_thread(fake)  # type: ignore[arg-type]
    yield server, fake
    server.stop()


async def make_key(prefix: str, limits: Limits) -> tuple[str, str, str]:
    settings = RedisSettings(url=SHARED_URL, prefix=prefix)  # type: ignore[arg-type]
    backend = RedisBackend(connect(settings), settings)
    key, record = await KeyService(RedisKeyStore(backend), PEPPER).create("exact", limits=limits)
    await backend.aclose()
    return key, record.id, record.tenant


async def fire(ports: list[int], key: str) -> Counter[int | str]:
    body = json.dumps({"model": "fake", "prompt": "count me", "max_tokens": 1}).encode()

    async def one(i: int) -> int | str:
        try:
            async with asyncio.timeout(120):
                return await raw_post(ports[i % len(ports)], "/v1/completions", body, key)
        except (OSError, TimeoutError) as exc:
            return type(exc).__name__

    return Counter(await asyncio.gather(*(one(i) for i in range(REQUESTS))))


async def test_four_processes_admit_exactly_the_limit(
    upstream: tuple[LiveServer, FakeUpstream], tmp_path: Path
) -> None:
    server, fake = upstream
    prefix = new_prefix()
    limits = Limits(requests_per_minute=LIMIT, tokens_per_minute=10**9, concurrent=10_000)
    key, key_id, tenant = await make_key(prefix, limits)
    entry = {"name": "fake", "engine": "openai", "url": server.v1, "context_length": 4096}
    env = {
        "GUARDSERVE_MODELS": json.dumps([entry]),
        "GUARDSERVE_GUARDRAILS__ENABLED": "false",
        "GUARDSERVE_AUTH__ENABLED": "true",
        "GUARDSERVE_AUTH__PEPPER": PEPPER,
        "GUARDSERVE_AUTH__DEV_KEY": "false",
        "GUARDSERVE_LIMITS__ENABLED": "true",
        "GUARDSERVE_LIMITS__KEY_DEFAULTS": "{}",
        # fail_closed: a Redis hiccup would show up as 503s, never as extra admissions. The generous timeouts
        # are for this 2-core box running 4 gateways (500 requests queued in each) and the load generator.
        "GUARDSERVE_LIMITS__FAILURE_MODE": "fail_closed",
        "GUARDSERVE_REDIS__URL": SHARED_URL,
        "GUARDSERVE_REDIS__PREFIX": prefix,
        "GUARDSERVE_REDIS__TIMEOUT_MS": "20000",
        "GUARDSERVE_REDIS__CONNECT_TIMEOUT_MS": "20000",
        "GUARDSERVE_REDIS__QUEUE_TIMEOUT_MS": "60000",
        # The fake upstream shares the test process with the load generator: under CI load its accepts lag, and a
        # 3 s connect timeout turned an admitted request into a 502 once (this test counts admissions, not latency).
        "GUARDSERVE_HTTP__CONNECT_TIMEOUT": "60",
    }
    gateways = start_gateways(PROCESSES, env, tmp_path)
    try:
        statuses = await fire([g.port for g in gateways], key)
    finally:
        for g in gateways:
            g.stop()
    store = redis.Redis.from_url(SHARED_URL)
    try:
        assert statuses == Counter({200: LIMIT, 429: REQUESTS - LIMIT}), statuses
        assert fake.served == LIMIT
        window, tokens, slots = scope_keys(prefix, tenant, Scope("key", key_id, limits), "")[:3]
        assert store.zcard(window) == LIMIT
        assert store.zcard(slots) == 0, "a concurrency slot leaked"
        # every reservation was replaced by the real usage: nothing is left reserved
        assert int(store.get(tokens) or 0) == LIMIT * USAGE["total_tokens"]
    finally:
        store.close()
        delete_prefix(SHARED_URL, prefix)
