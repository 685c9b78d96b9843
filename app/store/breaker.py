"""A circuit breaker: after N consecutive failures, stop calling a dead dependency for a while.

``closed`` (calls go through) → ``open`` after ``failures`` consecutive failures (calls are refused at once, so a
dead Redis adds no latency) → after ``reset_after`` seconds ``half_open``: exactly one probe call goes through;
its success closes the circuit, its failure opens it again for another ``reset_after``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, failures: int, reset_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.reset_after = reset_after
        self._clock = clock
        self._state: State = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> State:
        return self._state

    def allow(self) -> bool:
        """May a call go through now? In ``half_open`` only one probe at a time."""
        if self._state == "closed":
            return True
        if self._state == "open":
            if self._clock() - self._opened_at < self.reset_after:
                return False
            self._state = "half_open"
            self._probing = False
        if self._probing:
            return False
        self._probing = True
        return True

    def success(self) -> bool:
        """Record a successful call; True if this closed an open circuit (a recovery)."""
        recovered = self._state != "closed"
        self._state, self._consecutive, self._probing = "closed", 0, False
        return recovered

    def abandon(self) -> None:
        """A call that was let through ended without a verdict (cancelled): let the next probe go."""
        self._probing = False

    def failure(self) -> bool:
        """Record a failed call; True if this opened the circuit."""
        self._consecutive += 1
        self._probing = False
        if self._state == "half_open" or (self._state == "closed" and self._consecutive >= self.failures):
            self._state, self._opened_at = "open", self._clock()
            return True
        return False
