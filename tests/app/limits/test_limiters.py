"""The Redis (Lua) limiter and the in-memory one give the same answers: every test runs against both."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
import redis

from guardserve.app.limits.memory import MemoryLimiter
from guardserve.app.limits.model import Ask, Decision, Lease, RateLimiter, Scope
from guardserve.app.limits.redis_limiter import RedisLimiter, scope_keys, utc_day
from guardserve.app.limits.settings import Limits
from guardserve.app.store.backend import RedisBackend
from guardserve.app.store.connection import connect
from guardserve.app.store.settings import RedisSettings
from tests.support.redis import RedisProcess
from tests.support.waits import SETTLE_S, eventually


def backend_for(url: str, prefix: str, **overrides: Any) -> RedisBackend:
    fields = {"timeout_ms": 2000, "connect_timeout_ms": 2000, **overrides}
    settings = RedisSettings(url=url, prefix=prefix, **fields)  # type: ignore[arg-type]
    return RedisBackend(connect(settings), settings)


@pytest.fixture(params=["redis", "memory"])
async def limiter(request: pytest.FixtureRequest, shared_redis: tuple[str, str]) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryLimiter()
        return
    url, prefix = shared_redis
    backend = backend_for(url, prefix)
    limiter = RedisLimiter(backend, lease_seconds=30)
    yield limiter
    await limiter.aclose()
    await backend.aclose()


def ask(tokens: int = 0, key: Limits | None = None, tenant: Limits | None = None, tenant_id: str = "") -> Ask:
    tenant_id = tenant_id or f"t{uuid.uuid4().hex[:8]}"
    scopes = [Scope("key", "k1", key or Limits())]
    if tenant is not None:
        scopes.append(Scope("tenant", tenant_id, tenant))
    return Ask(uuid.uuid4().hex, tenant_id, tuple(scopes), tokens)


def again(previous: Ask, tokens: int | None = None) -> Ask:
    return Ask(uuid.uuid4().hex, previous.tenant, previous.scopes, previous.tokens if tokens is None else tokens)


async def test_requests_per_minute_is_exact(limiter: RateLimiter) -> None:
    first = ask(key=Limits(requests_per_minute=5))
    decisions = [await limiter.acquire(again(first)) for _ in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    refused = decisions[-1]
    assert refused.refused_limit == "requests" and refused.refused_scope == 0
    assert 59_000 <= refused.retry_after_ms <= 60_000  # the oldest admission leaves the window in ~60 s
    assert [d.usage[0].requests for d in decisions[:5]] == [1, 2, 3, 4, 5]


async def test_concurrent_admissions_never_exceed_the_limit(limiter: RateLimiter) -> None:
    first = ask(key=Limits(requests_per_minute=50))
    decisions = await asyncio.gather(*(limiter.acquire(again(first)) for _ in range(300)))
    assert sum(d.allowed for d in decisions) == 50


async def test_tokens_are_reserved_then_refunded(limiter: RateLimiter) -> None:
    first = ask(tokens=600, key=Limits(tokens_per_minute=1000))
    admitted = await limiter.acquire(first)
    assert admitted.allowed and admitted.usage[0].tokens == 600
    refused = await limiter.acquire(again(first))  # 600 + 600 > 1000 while the first is reserved
    assert not refused.allowed and refused.refused_limit == "tokens" and not refused.too_large
    assert admitted.lease is not None
    await limiter.release(admitted.lease, used_tokens=150)  # it used 150: 450 come back
    after = await limiter.acquire(again(first))
    assert after.allowed and after.usage[0].tokens == 150 + 600


async def test_a_request_larger_than_the_limit_is_refused_as_too_large(limiter: RateLimiter) -> None:
    decision = await limiter.acquire(ask(tokens=5000, key=Limits(tokens_per_minute=1000)))
    assert not decision.allowed and decision.too_large and decision.refused_limit == "tokens"


async def test_concurrency_slots_are_returned(limiter: RateLimiter) -> None:
    first = ask(key=Limits(concurrent=2))
    a, b = await limiter.acquire(first), await limiter.acquire(again(first))
    refused = await limiter.acquire(again(first))
    assert a.allowed and b.allowed and not refused.allowed and refused.refused_limit == "concurrent"
    assert a.lease is not None
    await limiter.release(a.lease, 0)
    assert (await limiter.acquire(again(first))).allowed


async def test_tenant_limit_spans_its_keys_and_refusal_reserves_nothing(limiter: RateLimiter) -> None:
    tenant = Limits(requests_per_minute=3)
    first = ask(key=Limits(requests_per_minute=100), tenant=tenant)
    other_key = Ask(
        uuid.uuid4().hex, first.tenant, (Scope("key", "k2", Limits(requests_per_minute=100)), first.scopes[1]), 0
    )
    results = [await limiter.acquire(again(first)) for _ in range(2)] + [await limiter.acquire(again(other_key))]
    assert all(d.allowed for d in results)
    refused = await limiter.acquire(again(other_key))
    assert not refused.allowed and refused.refused_scope == 1 and refused.refused_limit == "requests"
    # the refusal counted nowhere: key k2 still has one admission
    assert refused.usage[0].requests == 1


async def test_daily_quota(limiter: RateLimiter) -> None:
    first = ask(tokens=400, key=Limits(tokens_per_day=1000))
    a = await limiter.acquire(first)
    b = await limiter.acquire(again(first))
    refused = await limiter.acquire(again(first))
    assert a.allowed and b.allowed and not refused.allowed and refused.refused_limit == "tokens_per_day"
    assert refused.retry_after_ms == pytest.approx(utc_day()[1], abs=5000)
    assert a.lease is not None
    await limiter.release(a.lease, 100)  # 300 refunded: 100 + 400 used, 400 fits again
    assert (await limiter.acquire(again(first))).allowed


async def test_unlimited_dimensions_are_not_counted(limiter: RateLimiter) -> None:
    decision = await limiter.acquire(ask(tokens=10**9, key=Limits(requests_per_minute=10)))
    assert decision.allowed and decision.usage[0].requests == 1


async def test_redis_leases_expire_when_a_gateway_dies(shared_redis: tuple[str, str]) -> None:
    """A crashed gateway never settles: its slot must come back by itself once its lease lapses."""
    url, prefix = shared_redis
    backend = backend_for(url, prefix)
    lease = 2.0
    crashed = RedisLimiter(backend, lease_seconds=lease)  # never renews: it "crashed"
    first = ask(key=Limits(concurrent=1))
    started = time.monotonic()  # before the lease begins: the elapsed time is never understated
    assert (await crashed.acquire(first)).allowed
    refused = not (await crashed.acquire(again(first))).allowed
    # held while the lease runs (a loaded machine may take longer than the lease to ask again: then it lapsed)
    assert refused or time.monotonic() - started >= lease
    await eventually(
        lambda: _allowed(crashed.acquire(again(first))), within=SETTLE_S, what="the lapsed lease's slot free again"
    )
    await backend.aclose()


async def _allowed(deciding: Awaitable[Decision]) -> bool:
    return (await deciding).allowed


async def test_redis_renewal_keeps_a_long_request_slot(shared_redis: tuple[str, str]) -> None:
    url, prefix = shared_redis
    backend = backend_for(url, prefix)
    # renews every lease/3; waiting 2.5 lease times proves renewal, with room for a loaded machine's scheduling
    limiter = RedisLimiter(backend, lease_seconds=2.0)
    await limiter.start()
    try:
        first = ask(key=Limits(concurrent=1))
        held = await limiter.acquire(first)
        await asyncio.sleep(5.0)  # the time passing is what is tested: the lease would have lapsed twice over
        assert not (await limiter.acquire(again(first))).allowed, "a running request lost its slot"
        assert held.lease is not None
        await limiter.release(held.lease, 0)
        assert limiter.active == 0
        assert (await limiter.acquire(again(first))).allowed
    finally:
        await limiter.aclose()
        await backend.aclose()


async def test_redis_keys_share_the_tenant_slot_and_expire(shared_redis: tuple[str, str]) -> None:
    url, prefix = shared_redis
    backend = backend_for(url, prefix)
    limiter = RedisLimiter(backend, lease_seconds=30)
    first = ask(
        tokens=10,
        key=Limits(requests_per_minute=5, concurrent=5, tokens_per_day=100),
        tenant=Limits(requests_per_minute=9),
    )
    decision = await limiter.acquire(first)
    assert decision.lease is not None
    keys = [k for s in first.scopes for k in scope_keys(prefix, first.tenant, s, decision.lease.day)]
    assert all(f"{{{first.tenant}}}" in k for k in keys)
    sync = redis.Redis.from_url(url)
    ttls = [sync.pttl(k) for k in keys if sync.exists(k)]
    assert ttls and all(0 < t <= 2 * 86_400_000 for t in ttls), "a key without expiry would leak"
    await limiter.release(decision.lease, 10)
    lease: Lease = decision.lease
    assert sync.zcard(scope_keys(prefix, first.tenant, first.scopes[0], lease.day)[2]) == 0
    sync.close()
    await backend.aclose()


async def test_memory_fallback_divides_limits_among_processes() -> None:
    requests = ask(key=Limits(requests_per_minute=100))
    limiter = MemoryLimiter(divisor=4)
    assert sum([(await limiter.acquire(again(requests))).allowed for _ in range(40)]) == 25
    slots = ask(key=Limits(concurrent=3))  # 3 // 4 -> still one slot per process
    assert sum([(await limiter.acquire(again(slots))).allowed for _ in range(5)]) == 1


async def test_settlements_batched_in_one_pipeline_survive_a_redis_that_forgot_its_scripts(
    own_redis: RedisProcess,
) -> None:
    backend = backend_for(own_redis.url, "gs:")
    limiter = RedisLimiter(backend, lease_seconds=30)
    first = ask(tokens=100, key=Limits(concurrent=100, tokens_per_minute=100_000))
    leases = [(await limiter.acquire(again(first))).lease for _ in range(40)]
    own_redis.client().script_flush()  # as after a restart: the settle script must be sent again
    failures, round_trips = backend.failures, []
    call = backend.call

    def counting(operation: Any) -> Any:
        round_trips.append(1)
        return call(operation)

    backend.call = counting  # type: ignore[method-assign]
    await asyncio.gather(*(limiter.release(lease, 10) for lease in leases if lease is not None))
    assert len(round_trips) <= 2, "settlements ending together should share a pipeline"
    day = leases[0].day if leases[0] else ""
    window, tokens, slots = scope_keys("gs:", first.tenant, first.scopes[0], day)[:3]
    store = own_redis.client()
    assert store.zcard(slots) == 0 and int(store.get(tokens) or 0) == 40 * 10 and store.zcard(window) == 40
    assert backend.failures == failures
    await limiter.aclose()
    await backend.aclose()


async def test_settlements_redis_did_not_take_are_retried_until_they_land(own_redis: RedisProcess) -> None:
    """Redis stalls while requests end (CLIENT PAUSE: every call times out): their slots and refunds are retried in
    the background and land exactly once when it answers again, instead of holding the slots until lease expiry."""
    backend = backend_for(own_redis.url, "gs:", timeout_ms=150, connect_timeout_ms=150)
    limiter = RedisLimiter(backend, lease_seconds=600)  # long leases: only a settlement can free the slots
    first = ask(tokens=100, key=Limits(concurrent=100, tokens_per_minute=100_000))
    leases = [(await limiter.acquire(again(first))).lease for _ in range(20)]
    store = own_redis.client()
    day = leases[0].day if leases[0] else ""
    _, tokens, slots = scope_keys("gs:", first.tenant, first.scopes[0], day)[:3]
    assert store.zcard(slots) == 20
    store.client_pause(1500)
    await asyncio.gather(*(limiter.release(lease, 10) for lease in leases if lease is not None))
    assert limiter.unsettled == 20 and limiter.active == 0

    async def landed() -> bool:
        return limiter.unsettled == 0 and store.zcard(slots) == 0

    await eventually(landed, within=SETTLE_S, what="the retried settlements")
    assert int(store.get(tokens) or 0) == 20 * 10, "each refund applied exactly once"
    await limiter.aclose()
    await backend.aclose()
