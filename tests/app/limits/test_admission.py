"""RateLimitAdmission on its own: what it reserves, what it settles, how it refuses."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from guardserve.app.context import RequestContext
from guardserve.app.errors import APIError
from guardserve.app.limits.admission import RateLimitAdmission
from guardserve.app.limits.memory import MemoryLimiter
from guardserve.app.limits.model import Ask, Decision, Lease
from guardserve.app.limits.settings import Limits, LimitSettings
from guardserve.app.store.backend import BackendUnavailableError
from guardserve.models.engine import GenerationRequest, SamplingParams
from guardserve.models.registry import ModelEntry, ServedModel
from tests.support.waits import eventually

SERVED = ServedModel(ModelEntry(name="m", engine="openai", url="http://x/v1", context_length=1000), None, 1000, True, 0)  # type: ignore[arg-type]


class Recording(MemoryLimiter):
    """The in-memory limiter, recording asks and settlements; optionally slow or down."""

    def __init__(self, delay: float = 0.0, down: bool = False) -> None:
        super().__init__()
        self.delay, self.down = delay, down
        self.asks: list[Ask] = []
        self.released: list[tuple[Lease, int]] = []

    async def acquire(self, ask: Ask) -> Decision:
        self.asks.append(ask)
        await asyncio.sleep(self.delay)
        if self.down:
            raise BackendUnavailableError("down")
        return await super().acquire(ask)

    async def release(self, lease: Lease, used_tokens: int) -> None:
        self.released.append((lease, used_tokens))
        await super().release(lease, used_tokens)


def admission(limiter: Recording, **key: Any) -> RateLimitAdmission:
    return RateLimitAdmission(limiter, LimitSettings(key_defaults=Limits(**key)))


def ctx() -> RequestContext:
    return RequestContext(request_id="r", route="/v1/completions", key_id="k1", tenant="acme")


def request(max_tokens: int | None, prompt: str = "x" * 30) -> GenerationRequest:
    return GenerationRequest("r", "m", SamplingParams(max_tokens=max_tokens), prompt=prompt)


async def test_reserves_prompt_plus_max_tokens_and_settles_the_real_usage() -> None:
    limiter = Recording()
    c = ctx()
    await admission(limiter, tokens_per_minute=10_000).admit(c, SERVED, request(200))
    assert limiter.asks[0].tokens == 11 + 200  # estimate: 30 bytes / 3 + 1, plus max_tokens
    assert c.response_headers["x-ratelimit-limit-tokens"] == "10000"
    c.prompt_tokens, c.completion_tokens = 9, 50
    await c.finish()
    assert limiter.released[0][1] == 59


async def test_without_max_tokens_the_rest_of_the_context_is_reserved() -> None:
    limiter = Recording()
    await admission(limiter, tokens_per_minute=10_000).admit(ctx(), SERVED, request(None))
    assert limiter.asks[0].tokens == 1000


async def test_a_disconnected_client_is_charged_its_prompt() -> None:
    limiter = Recording()
    c = ctx()
    await admission(limiter, tokens_per_minute=10_000).admit(c, SERVED, request(200))
    c.disconnected = True
    await c.finish()
    assert limiter.released[0][1] == 11


async def test_no_limits_means_no_limiter_call_and_no_headers() -> None:
    limiter = Recording()
    c = ctx()
    await admission(limiter).admit(c, SERVED, request(10))
    assert limiter.asks == [] and c.response_headers == {}


async def test_redis_down_in_fail_closed_is_503_with_retry_after() -> None:
    a = admission(Recording(down=True), requests_per_minute=5)
    with pytest.raises(APIError) as err:
        await a.admit(ctx(), SERVED, request(10))
    assert err.value.status == 503 and err.value.headers["Retry-After"] == "1"
    assert a.events.decisions[("all", "fail_closed")] == 1


async def test_refusals_are_429_and_counted_by_limit() -> None:
    a = admission(Recording(), requests_per_minute=1)
    seen: list[tuple[str, str]] = []
    a.events.subscribe(lambda limit, result: seen.append((limit, result)))
    await a.admit(ctx(), SERVED, request(10))
    with pytest.raises(APIError) as err:
        await a.admit(ctx(), SERVED, request(10))
    assert err.value.status == 429 and err.value.type == "rate_limit_exceeded"
    assert int(err.value.headers["Retry-After"]) == 60
    assert seen == [("all", "allowed"), ("requests", "limited")]


async def test_too_large_for_the_limit_says_so_without_a_retry_hint() -> None:
    with pytest.raises(APIError, match="Request too large") as err:
        await admission(Recording(), tokens_per_minute=100).admit(ctx(), SERVED, request(500))
    assert err.value.status == 413 and err.value.code == "request_too_large"
    assert err.value.param == "limits.tokens_per_minute" and "100 tokens per minute" in err.value.message
    assert "Retry-After" not in err.value.headers


async def test_a_counted_prompt_is_not_counted_again() -> None:
    limiter, c = Recording(), ctx()
    c.counted_prompt_tokens = 42
    await admission(limiter, tokens_per_minute=10_000).admit(c, SERVED, request(8))
    assert limiter.asks[0].tokens == 50


async def test_moderation_has_its_own_budget() -> None:
    limiter = Recording()
    a = RateLimitAdmission(
        limiter, LimitSettings(key_defaults=Limits(requests_per_minute=1), moderation=Limits(requests_per_minute=2))
    )
    await a.admit(ctx(), SERVED, request(10))  # the completions budget is used up ...
    await a.admit_moderation(ctx(), ["hello"])  # ... moderation still has its own
    await a.admit_moderation(ctx(), ["hello"])
    with pytest.raises(APIError) as err:
        await a.admit_moderation(ctx(), ["hello"])
    assert err.value.status == 429 and "Retry-After" in err.value.headers
    assert limiter.asks[-1].scopes[0].id == "moderation:k1"


async def test_a_client_leaving_mid_decision_gets_its_slot_released() -> None:
    limiter = Recording(delay=0.5)  # long enough that the cancel surely lands inside it, even on a busy machine
    task = asyncio.create_task(admission(limiter, concurrent=1).admit(ctx(), SERVED, request(10)))
    await eventually(lambda: limiter.asks, what="the admission asked the limiter")  # now inside the slow acquire
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: limiter.released, what="the slot released after the cancellation")
    assert len(limiter.released) == 1 and limiter.active == 0


def test_a_keys_scopes_are_resolved_once_and_again_when_its_own_limits_change() -> None:
    a = RateLimitAdmission(
        Recording(),
        LimitSettings(key_defaults=Limits(requests_per_minute=60), tenants={"acme": Limits(concurrent=4)}),
    )
    first, again = ctx(), ctx()
    tenant, scopes = a.scopes(first)
    assert tenant == "acme" and a.scopes(again)[1] is scopes  # memoized: the same resolved tuple
    key, acme = scopes
    assert (key.kind, key.id, key.limits.requests_per_minute) == ("key", "k1", 60)
    assert (acme.kind, acme.id, acme.limits.concurrent) == ("tenant", "acme", 4)
    changed = ctx()
    changed.key_limits = {"requests_per_minute": 5, "tokens_per_day": 100}  # an admin changed the key's limits
    key, _ = a.scopes(changed)[1]
    assert (key.limits.requests_per_minute, key.limits.tokens_per_day) == (5, 100)
    unlimited = ctx()
    unlimited.tenant = "other"  # no tenant limits: only the key's scope is limited
    assert [s.kind for s in a.scopes(unlimited)[1]] == ["key"]
