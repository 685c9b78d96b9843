"""Every Redis call of the gateway goes through :class:`RedisBackend.call`: one timeout (pool wait included), a
bound on concurrent calls, a circuit breaker, and outage logging once per interval.

Callers get either the result or :class:`BackendUnavailableError` (never a redis-py exception) and decide what an
outage means for them: the limiter falls back or refuses, the key store serves what it saw recently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisError

from guardserve.app.store.breaker import CircuitBreaker
from guardserve.app.store.connection import RedisClient, describe
from guardserve.app.store.deadline import lag_tolerant_timeout
from guardserve.app.store.settings import RedisSettings

log = logging.getLogger(__name__)

T = TypeVar("T")


class BackendUnavailableError(Exception):
    """Redis did not answer in time, refused, or the circuit is open."""


class OutageLog:
    """At most one warning per interval however Redis flaps (with the count of failed calls since the last one),
    and a recovery line for the outages whose start was logged."""

    def __init__(self, what: str, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.interval = interval
        self._clock = clock
        self._since: float | None = None  # start of the current outage
        self._logged = False  # its start was logged
        self._last: float | None = None  # last warning
        self._unlogged = 0

    def failure(self, reason: str) -> None:
        now = self._clock()
        self._unlogged += 1
        if self._since is None:
            self._since, self._logged = now, False
        if self._last is not None and now - self._last < self.interval:
            return
        self._last, self._logged = now, True
        log.warning(
            "%s unavailable (%s); %d failed or refused calls since the last message", self.what, reason, self._unlogged
        )
        self._unlogged = 0

    def recovered(self) -> None:
        if self._since is not None and self._logged:
            log.warning("%s is reachable again after %.1f s", self.what, self._clock() - self._since)
        self._since = None


class RedisBackend:
    def __init__(self, client: RedisClient, settings: RedisSettings) -> None:
        self.client = client
        self.prefix = settings.prefix
        self.target = describe(settings.url.get_secret_value()) if settings.url else None
        # A call that opens a connection may take connect + command time; waiting for a free slot (a burst of our
        # own) is bounded separately and says nothing about Redis' health.
        self._timeout = (settings.timeout_ms + settings.connect_timeout_ms) / 1000
        self._queue_timeout = settings.queue_timeout_ms / 1000
        self.max_calls = settings.max_connections
        self._slots = asyncio.Semaphore(settings.max_connections)
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_ms / 1000)
        where = f"Redis at {self.target.where} ({self.target.kind})" if self.target else "Redis"
        self._outage = OutageLog(where, settings.warn_interval_s)
        self._queue = OutageLog(f"{where}: a free call slot", settings.warn_interval_s)  # our own overload
        self._listeners: list[Callable[[bool], None]] = []
        self.failures = 0  # failed or refused calls since start (for metrics)

    @property
    def degraded(self) -> bool:
        """True while the circuit is not closed: Redis failed recently and has not answered since."""
        return self.breaker.state != "closed"

    def on_degraded(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(degraded)`` whenever the flag changes (metrics gauges)."""
        self._listeners.append(listener)

    async def call(self, operation: Callable[[RedisClient], Awaitable[T]]) -> T:
        if not self.breaker.allow():
            self.failures += 1
            self._outage.failure("circuit open")
            raise BackendUnavailableError("circuit open")
        try:
            if self._slots.locked():  # a burst of our own: wait for a slot, bounded
                async with lag_tolerant_timeout(self._queue_timeout):
                    await self._slots.acquire()
            else:
                await self._slots.acquire()  # free: returns at once (no timer for the common case)
        except BaseException as exc:
            self.breaker.abandon()
            if isinstance(exc, TimeoutError):
                self.failures += 1
                self._queue.failure(f"calls waited {self._queue_timeout * 1000:.0f} ms for one of {self.max_calls}")
                raise BackendUnavailableError("too many Redis calls waiting") from None
            raise
        try:
            async with lag_tolerant_timeout(self._timeout):
                result = await operation(self.client)
        except (RedisError, OSError, TimeoutError) as exc:
            self.failures += 1
            reason = type(exc).__name__ + (f": {str(exc)[:200]}" if str(exc) else "")
            self._outage.failure(reason)
            if self.breaker.failure():
                self._notify(True)
            raise BackendUnavailableError(reason) from exc
        except BaseException:
            self.breaker.abandon()  # cancelled by the caller: no verdict on Redis
            raise
        finally:
            self._slots.release()
        self._queue.recovered()
        if self.breaker.success():
            self._outage.recovered()
            self._notify(False)
        return result

    async def ping(self) -> None:
        await self.call(lambda client: client.ping())

    def _notify(self, degraded: bool) -> None:
        for listener in self._listeners:
            try:
                listener(degraded)
            except Exception:
                log.exception("degraded-flag listener failed")

    async def aclose(self) -> None:
        await self.client.aclose()
