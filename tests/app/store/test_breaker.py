from __future__ import annotations

from guardserve.app.store.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_probes_once_after_the_reset() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, reset_after=0.5, clock=clock)
    assert breaker.allow()
    assert not breaker.failure() and not breaker.failure()
    breaker.success()  # a success resets the count
    assert not breaker.failure() and not breaker.failure()
    assert breaker.failure() and breaker.state == "open"
    assert not breaker.allow()
    clock.now = 0.6
    assert breaker.allow() and breaker.state == "half_open"
    assert not breaker.allow(), "only one probe at a time"
    assert breaker.failure() and breaker.state == "open"  # the probe failed: open again
    assert not breaker.allow()
    clock.now = 1.2
    assert breaker.allow()
    assert breaker.success() and breaker.state == "closed"
    assert breaker.allow()


def test_an_abandoned_probe_lets_the_next_one_go() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_after=0.1, clock=clock)
    breaker.failure()
    clock.now = 0.2
    assert breaker.allow()
    breaker.abandon()
    assert breaker.allow()
