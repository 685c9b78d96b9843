"""The circuit breaker's states with a controlled clock, and BreakerEngine's reading of each outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from guardserve.models.breaker import BreakerConfig, BreakerEngine, CircuitBreaker
from guardserve.models.engine import (
    Completion,
    Delta,
    EngineHealth,
    EngineUnavailableError,
    GenerationRequest,
    InvalidRequestError,
    SamplingParams,
    UpstreamUnreachableError,
)

REQUEST = GenerationRequest("r", "m", SamplingParams(), prompt="hi")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def opened(clock: Clock, failures: int = 2) -> CircuitBreaker:
    breaker = CircuitBreaker(BreakerConfig(failures=failures, cooldown=5.0), clock)
    for _ in range(failures):
        breaker.check()
        breaker.failed()
    return breaker


def test_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(BreakerConfig(failures=3, cooldown=5.0), Clock())
    breaker.failed()
    breaker.failed()
    breaker.succeeded()  # a success in between resets the count
    breaker.failed()
    breaker.failed()
    assert breaker.state == "closed"
    breaker.failed()
    assert breaker.state == "open"


def test_open_refuses_with_the_time_left_then_lets_one_probe() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 1.2
    with pytest.raises(EngineUnavailableError) as err:
        breaker.check()
    assert err.value.retry_after == 4.0 and "circuit open" in err.value.message
    clock.now += 4.0
    breaker.check()  # the probe
    assert breaker.state == "half_open"
    with pytest.raises(EngineUnavailableError):
        breaker.check()  # everyone else waits for the probe's outcome


def test_a_failed_probe_reopens_and_a_successful_one_closes() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 5
    breaker.check()
    breaker.failed()
    assert breaker.state == "open"
    with pytest.raises(EngineUnavailableError):
        breaker.check()
    clock.now += 5
    breaker.check()
    breaker.succeeded()
    assert breaker.state == "closed"
    breaker.check()


def test_a_cancelled_probe_lets_the_next_request_probe() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += 5
    breaker.check()
    breaker.released()
    breaker.check()  # at once, no new cooldown
    assert breaker.state == "half_open"


class Scripted:
    """An engine that raises what it is told to (None: answers)."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.calls = 0
        self.ok = False

    async def generate(self, request: GenerationRequest) -> Completion:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return Completion("ok", "stop", 1, 1)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        yield Delta("", 1, 0)

    async def health(self) -> EngineHealth:
        return EngineHealth(self.ok, "scripted", 0)

    async def aclose(self) -> None:
        return None


def test_only_unreachable_counts_and_health_closes() -> None:
    async def run() -> None:
        inner, clock = Scripted(), Clock()
        engine = BreakerEngine(inner, CircuitBreaker(BreakerConfig(failures=2, cooldown=60.0), clock))
        inner.error = InvalidRequestError("bad")  # the upstream answered: reachable
        for _ in range(5):
            with pytest.raises(InvalidRequestError):
                await engine.generate(REQUEST)
        assert engine.breaker.state == "closed"
        inner.error = UpstreamUnreachableError("refused")
        for _ in range(2):
            with pytest.raises(UpstreamUnreachableError):
                await engine.generate(REQUEST)
        calls = inner.calls
        for _ in range(10):  # refused without calling the upstream
            with pytest.raises(EngineUnavailableError):
                await engine.generate(REQUEST)
            with pytest.raises(EngineUnavailableError):
                await anext(engine.stream(REQUEST))
        assert inner.calls == calls
        inner.ok, inner.error = True, None
        assert (await engine.health()).ok and engine.breaker.state == "closed"
        assert (await engine.generate(REQUEST)).text == "ok"
        assert [d async for d in engine.stream(REQUEST)] == [Delta("", 1, 0)]

    asyncio.run(run())


class EmptyStream:
    async def post_stream(self, path: str, body: dict[str, object]) -> AsyncIterator[dict[str, object]]:
        for event in ():
            yield event

    async def aclose(self) -> None:
        return None


def test_a_probe_stream_with_no_events_closes_the_breaker() -> None:
    """A 200 stream that ends at once is an answer: the probe must not leave the breaker half-open (review)."""
    clock = Clock()
    breaker = opened(clock)
    clock.now += 5
    engine = BreakerEngine(EmptyStream(), breaker)  # type: ignore[arg-type]

    async def drain() -> list[object]:
        return [e async for e in engine.post_stream("/chat/completions", {})]

    assert asyncio.run(drain()) == []
    assert breaker.state == "closed"
