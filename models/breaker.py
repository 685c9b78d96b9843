"""A circuit breaker per upstream: while an upstream is unreachable, refuse at once instead of trying to connect.

Without it every request to a dead upstream pays its own connect attempt (a refused connection is quick, a
blackholed host costs the whole connect timeout), and a burst of them queues behind the pool. The breaker counts
consecutive *unreachable* failures (:class:`~models.engine.UpstreamUnreachableError`: connect refused or timed
out; an upstream that answers, even with 503, is reachable). After ``failures`` of them it opens: requests get
:class:`~models.engine.EngineUnavailableError` with ``Retry-After`` set to the time left, without touching the
network. After ``cooldown`` seconds one request goes through as a probe (half-open); its success closes the breaker,
its failure opens it again. A healthy health check (the gateway polls every engine) closes it too, so recovery
needs no restart and no lucky request.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from guardserve.models.engine import (
    Completion,
    Delta,
    Engine,
    EngineError,
    EngineHealth,
    EngineUnavailableError,
    GenerationRequest,
    UpstreamUnreachableError,
)

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True)
class BreakerConfig:
    failures: int = 3  # consecutive unreachable failures that open the breaker
    cooldown: float = 2.0  # seconds open before one probe request is let through


class CircuitBreaker:
    def __init__(self, config: BreakerConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or BreakerConfig()
        self._clock = clock
        self.state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0

    def check(self) -> None:
        """Raise :class:`EngineUnavailableError` while open; let one probe through once the cooldown is over."""
        if self.state == "closed":
            return
        left = self._opened_at + self.config.cooldown - self._clock()
        if self.state == "open" and left <= 0:
            self.state = "half_open"  # this caller is the probe; the others wait for its outcome
            return
        raise EngineUnavailableError(
            "upstream unreachable (circuit open after repeated connection failures)",
            retry_after=max(1.0, math.ceil(left)) if left > 0 else 1.0,
        )

    def succeeded(self) -> None:
        self.state, self._failures = "closed", 0

    def released(self) -> None:
        """A call ended without saying whether the upstream is reachable (cancelled): the next one may probe."""
        if self.state == "half_open":
            self.state, self._opened_at = "open", self._clock() - self.config.cooldown

    def failed(self) -> None:
        self._failures += 1
        if self.state == "half_open" or self._failures >= self.config.failures:
            self.state, self._opened_at = "open", self._clock()


class BreakerEngine:
    """An engine (and pass-through) behind a :class:`CircuitBreaker`; other attributes come from the inner engine."""

    def __init__(self, inner: Engine, breaker: CircuitBreaker) -> None:
        self.inner = inner
        self.breaker = breaker

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    async def generate(self, request: GenerationRequest) -> Completion:
        self.breaker.check()
        with self._outcome():
            return await self.inner.generate(request)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        self.breaker.check()
        async for delta in self._guarded(self.inner.stream(request)):
            yield delta

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.breaker.check()
        with self._outcome():
            result: dict[str, Any] = await self.inner.post_json(path, body)  # type: ignore[attr-defined]
        return result

    @contextlib.contextmanager
    def _outcome(self) -> Iterator[None]:
        try:
            yield
        except BaseException as exc:
            self._record(exc)
            raise
        self._record(None)

    def _record(self, exc: BaseException | None) -> None:
        """Tell the breaker how a call went: unreachable; reached (an answer, or any other engine error: the
        upstream answered); or neither (cancelled, closed early)."""
        if isinstance(exc, UpstreamUnreachableError):
            self.breaker.failed()
        elif exc is None or isinstance(exc, EngineError):
            self.breaker.succeeded()
        else:
            self.breaker.released()

    async def post_stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        self.breaker.check()
        async for event in self._guarded(self.inner.post_stream(path, body)):  # type: ignore[attr-defined]
            yield event

    async def _guarded(self, items: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """A stream counts as reached once its first item arrives (the upstream accepted the request), or once it
        ends without one (an empty answer is an answer); closed before either, it says nothing."""
        first = True
        try:
            async for item in items:
                if first:
                    first = False
                    self.breaker.succeeded()
                yield item
            if first:
                self.breaker.succeeded()
        except BaseException as exc:
            if first:
                self._record(exc)
            raise
        finally:
            aclose = getattr(items, "aclose", None)
            if aclose is not None:
                await aclose()

    async def health(self) -> EngineHealth:
        health = await self.inner.health()
        if health.ok and self.breaker.state != "closed":
            self.breaker.succeeded()
        return health

    async def aclose(self) -> None:
        await self.inner.aclose()
