"""A bounded queue in front of the guard stage: a few screenings at once, a few waiting, the rest refused at once.

Without it, a burst of large prompts queues up in the guard threads and each waits its turn behind all the others:
excess load is shed only after the guards have run for every one of them. :class:`ScreeningGate` admits ``slots``
screenings at once and lets at most ``max_queued`` more wait (first come, first served). A screening that finds the
queue full raises :class:`GuardrailsBusyError` at once; one that waits longer than ``wait`` seconds raises it too. A
waiter cancelled (its client left) gives up its place without ever running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class GuardrailsBusyError(RuntimeError):
    """The guard stage is full: the caller should refuse with 503 and a Retry-After."""


class ScreeningGate:
    def __init__(self, slots: int, max_queued: int) -> None:
        if slots < 1 or max_queued < 0:
            raise ValueError("slots must be >= 1 and max_queued >= 0")
        self.slots = slots
        self.max_queued = max_queued
        self.active = 0  # screenings running now
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    @contextlib.asynccontextmanager
    async def slot(self, wait: float | None = None) -> AsyncIterator[None]:
        await self._acquire(wait)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, wait: float | None) -> None:
        if self.active < self.slots and not self._waiters:
            self.active += 1
            return
        if len(self._waiters) >= self.max_queued:
            raise GuardrailsBusyError(f"the guard stage is full ({self.active} running, {self.queued} waiting)")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), wait)
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():  # handed a slot just as we gave up: pass it on
                self._release()
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise GuardrailsBusyError(f"no guard slot within {wait} s") from None
            raise

    def _release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes straight to the next waiter: `active` stays
                return
        self.active -= 1
