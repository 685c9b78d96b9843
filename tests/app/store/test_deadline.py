"""The Redis call deadline after a blocked event loop: a healthy Redis is not timed out because the loop was busy;
a Redis that does not answer still is."""

from __future__ import annotations

import asyncio
import time

import pytest

from guardserve.app.store.backend import BackendUnavailableError, RedisBackend
from guardserve.app.store.connection import connect
from guardserve.app.store.deadline import lag_tolerant_timeout
from guardserve.app.store.settings import RedisSettings
from tests.support.redis import RedisProcess


def backend(url: str) -> RedisBackend:
    settings = RedisSettings(url=url, timeout_ms=50, connect_timeout_ms=50, breaker_failures=100)  # type: ignore[arg-type]
    return RedisBackend(connect(settings), settings)


async def test_a_blocked_loop_does_not_time_out_a_healthy_redis(own_redis: RedisProcess) -> None:
    redis = backend(own_redis.url)
    await redis.ping()  # connected
    for _ in range(5):
        asyncio.get_running_loop().call_soon(time.sleep, 0.3)  # the loop stalls 6x the deadline mid-call
        assert await redis.call(lambda client: client.ping()) is True
    assert redis.failures == 0
    await redis.aclose()


async def test_a_stalled_redis_still_times_out(own_redis: RedisProcess) -> None:
    redis = backend(own_redis.url)
    await redis.ping()
    own_redis.client().client_pause(1000)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError):
        await redis.call(lambda client: client.ping())
    assert time.monotonic() - started < 0.9  # cut off near the deadline, not when Redis came back
    await redis.aclose()


async def test_the_deadline_still_fires_for_a_stuck_task() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with lag_tolerant_timeout(0.05):
            asyncio.get_running_loop().call_soon(time.sleep, 0.2)
            await asyncio.sleep(10)
    assert time.monotonic() - started < 5
