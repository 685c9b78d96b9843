"""The Redis backend against a test-owned redis-server that dies: fast failures, one warning, recovery."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from guardserve.app.store.backend import BackendUnavailableError, OutageLog, RedisBackend
from guardserve.app.store.connection import connect, describe
from guardserve.app.store.settings import RedisSettings
from tests.support.redis import RedisProcess
from tests.support.waits import SETTLE_S


def backend(url: str, **overrides: object) -> RedisBackend:
    settings = RedisSettings(url=url, **overrides)  # type: ignore[arg-type]
    return RedisBackend(connect(settings), settings)


async def test_dead_redis_fails_fast_logs_once_and_recovers(
    own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    b = backend(own_redis.url, breaker_failures=2, breaker_reset_ms=200, warn_interval_s=60)
    changes: list[bool] = []
    b.on_degraded(changes.append)
    await b.ping()
    own_redis.kill()
    caplog.set_level(logging.WARNING, logger="guardserve.app.store.backend")
    took = []
    for _ in range(200):
        start = time.perf_counter()
        with pytest.raises(BackendUnavailableError):
            await b.ping()
        took.append(time.perf_counter() - start)
    assert b.degraded and changes == [True]
    took.sort()
    # no network round trip: far below a Redis timeout even when a loaded machine preempts the loop now and then
    assert took[100] < 0.005, f"an open circuit must answer at once, median {took[100] * 1000:.2f} ms"
    warnings = [r for r in caplog.records if r.name == "guardserve.app.store.backend"]
    assert len(warnings) == 1 and warnings[0].exc_info is None  # one line, no traceback
    assert "127.0.0.1" in warnings[0].getMessage()

    own_redis.start()  # same port; the half-open probe finds it
    back = time.monotonic()
    while True:
        try:
            await b.ping()
            break
        except BackendUnavailableError:
            await asyncio.sleep(0.02)
    assert time.monotonic() - back < SETTLE_S  # the half-open probe, 200 ms after the reset
    assert not b.degraded and changes == [True, False]
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    await b.aclose()


async def test_a_slow_redis_times_out_in_milliseconds(own_redis: RedisProcess) -> None:
    b = backend(own_redis.url, timeout_ms=50)
    start = time.perf_counter()
    with pytest.raises(BackendUnavailableError):
        await b.call(lambda client: client.execute_command("DEBUG", "SLEEP", "5"))
    assert time.perf_counter() - start < 2.5  # timed out (50 ms), long before the server's 5 s sleep ended
    await b.aclose()


def test_urls_are_described_without_passwords() -> None:
    assert describe("redis://:secret@10.0.0.1:6379/0").where == "10.0.0.1:6379"
    target = describe("redis+sentinel://:secret@s1:26379,s2:26379/mymaster/0")
    assert target.kind == "sentinel" and "secret" not in target.where
    assert describe("redis+cluster://c1:7000").kind == "cluster"
    with pytest.raises(ValueError, match="scheme"):
        connect(RedisSettings(url="http://x"))  # type: ignore[arg-type]


def test_a_flapping_redis_is_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    outage = OutageLog("Redis", interval=30, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="guardserve.app.store.backend")
    for second in range(60):  # down and up again every second for a minute
        now[0] = float(second)
        outage.failure("ConnectionError")
        outage.failure("ConnectionError")
        outage.recovered()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 4  # t=0 and t=30: the outage, then its end
    assert "unavailable" in messages[0] and "1 failed" in messages[0] and "reachable again" in messages[1]
    assert "unavailable" in messages[2] and "60 failed" in messages[2] and "reachable again" in messages[3]
