"""A test-owned Redis killed mid-load and restarted, in both failure modes.

fail_open: no 5xx at all; fail_closed: only 503 while Redis is down. Either way one warning line (no traceback),
and limits are enforced by Redis again soon after its return (the time is printed; the deadline is generous because
the machine may be loaded). Every phase waits on what it needs (requests answered, the degraded flag) rather than
for a fixed time, and requests are judged by when they *started*: one admitted before the kill may end after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from guardserve.app.limits.model import Scope
from guardserve.app.limits.redis_limiter import scope_keys
from guardserve.app.limits.settings import Limits
from guardserve.app.main import create_app
from guardserve.models.registry import ModelEntry
from tests.support.access import create_key, secure_settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.redis import RedisProcess
from tests.support.servers import LiveServer, serve_in_thread
from tests.support.waits import SETTLE_S, eventually

pytestmark = pytest.mark.slow

BODY = {"model": "fake", "prompt": "hello", "max_tokens": 4}


@pytest.fixture(scope="module")
def upstream() -> Iterator[LiveServer]:
    server = serve_in_thread(FakeUpstream("fake"))  # type: ignore[arg-type]
    yield server
    server.stop()


class Load:
    """Requests back to back from a few concurrent clients, every status recorded with its start and end time."""

    def __init__(self, url: str, key: str, clients: int = 4) -> None:
        self.url, self.key, self.clients = url, key, clients
        self.results: list[tuple[float, float, int]] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {self.key}"}, timeout=10) as client:

            async def loop() -> None:
                while not self._stop.is_set():
                    started = time.monotonic()
                    response = await client.post(f"{self.url}/v1/completions", json=BODY)
                    self.results.append((started, time.monotonic(), response.status_code))
                    await asyncio.sleep(0.005)

            await asyncio.gather(*(loop() for _ in range(self.clients)))

    def stop(self) -> None:
        self._stop.set()

    def between(self, start: float, end: float) -> set[int]:
        """Statuses of the requests that started and ended within [start, end)."""
        return {status for began, ended, status in self.results if start <= began and ended < end}

    def since(self, start: float) -> int:
        return sum(1 for began, _, _ in self.results if began >= start)


@pytest.mark.parametrize("mode", ["fail_open", "fail_closed"])
async def test_redis_killed_mid_load_and_restarted(
    mode: str, own_redis: RedisProcess, upstream: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    entry = ModelEntry(name="fake", engine="openai", url=upstream.v1, context_length=4096)
    settings = secure_settings([entry], own_redis.url, failure_mode=mode)
    # A killed Redis refuses connections at once; generous timeouts keep a busy 2-core box from adding spurious
    # timeouts (which fail_closed would rightly answer with 503) after Redis is back.
    settings.redis.timeout_ms = settings.redis.connect_timeout_ms = 1000
    gateway = serve_in_thread(create_app(settings))
    caplog.set_level(logging.WARNING)
    try:
        load_key = create_key(gateway, "load", limits={"requests_per_minute": 100_000})
        probe = create_key(gateway, "probe", limits={"requests_per_minute": 3})
        probe_window = scope_keys("gs:", "probe", Scope("key", probe["id"], Limits()), "")[0]
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {probe['key']}"}, timeout=10) as c:
            await c.get(f"{gateway.v1}/models")  # the probe key is known to this process before the outage
        load = Load(gateway.url, load_key["key"])
        running = asyncio.create_task(load.run())
        await eventually(lambda: load.since(0) >= 20, what="the load running")
        killed = time.monotonic()
        own_redis.kill()
        await eventually(lambda: gateway.app.state.access.degraded, what="the gateway noticing the outage")
        noticed = time.monotonic()
        await eventually(lambda: load.since(noticed) >= 20, what="requests served during the outage")
        async with httpx.AsyncClient(timeout=10) as c:
            metrics = (await c.get(f"{gateway.url}/metrics")).text
        degraded_metric = "guardserve_ratelimit_backend_degraded 1.0" in metrics
        own_redis.start()  # same port, AOF: keys and windows are back
        back = time.monotonic()
        degraded_during = gateway.app.state.access.degraded

        # limits enforced by Redis again: probe admissions show up in Redis' window
        store = own_redis.client()
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {probe['key']}"}, timeout=10) as c:
            while store.zcard(probe_window) == 0:
                assert time.monotonic() - back < SETTLE_S, f"limits not back on Redis within {SETTLE_S} s"
                await c.post(f"{gateway.v1}/completions", json=BODY)
                await asyncio.sleep(0.02)
            recovered_at = time.monotonic()
            statuses = [(await c.post(f"{gateway.v1}/completions", json=BODY)).status_code for _ in range(4)]
        assert 429 in statuses and store.zcard(probe_window) == 3  # 3 per minute, counted by Redis
        await eventually(lambda: load.since(recovered_at) >= 20, what="requests served after the recovery")
        load.stop()
        await running
        store.close()
        async with httpx.AsyncClient(timeout=10) as c:
            final_metrics = (await c.get(f"{gateway.url}/metrics")).text
    finally:
        gateway.stop()

    assert degraded_during and degraded_metric
    assert f'guardserve_ratelimit_decisions_total{{limit="all",result="{mode}"}}' in final_metrics
    assert "guardserve_ratelimit_backend_degraded 0.0" in final_metrics  # back
    assert load.between(0, killed) == {200}
    during = load.between(noticed, back)  # started once the gateway knew: decided without Redis
    everything = {status for _, _, status in load.results}
    if mode == "fail_open":
        assert everything == {200}, f"fail_open must never answer 5xx: {everything}"
    else:
        assert during == {503}, f"fail_closed answers 503 while Redis is down: {during}"
        assert everything <= {200, 503}
    assert load.between(recovered_at, time.monotonic()) == {200}
    outage_lines = [r for r in caplog.records if r.name.startswith("guardserve.app.")]
    assert all(r.exc_info is None for r in outage_lines), "no tracebacks for a Redis outage"
    assert len([r for r in outage_lines if "unavailable" in r.getMessage()]) == 1, [
        r.getMessage() for r in outage_lines
    ]
    recovered = (recovered_at - back) * 1000
    print(f"{mode}: {len(load.results)} requests, Redis-backed limits again {recovered:.0f} ms after restart")
