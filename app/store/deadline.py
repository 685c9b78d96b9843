"""A timeout that a busy event loop cannot fake.

``asyncio.timeout`` fires when its timer runs. If the loop was blocked (a long guard call, GC, a loaded machine),
the timer runs late, in the same loop iteration that first sees the socket readable: the reply has arrived but the
task waiting for it has not run yet, and the timeout cancels it anyway. Measured before this: fail_closed answered
503 while Redis was healthy and only the loop was busy.

:func:`lag_tolerant_timeout` checks how late its timer ran. Late by more than ``grace`` means the loop was stuck,
not (only) Redis, and the call may not even have been sent before the loop stalled: it starts the deadline once
more from the moment the loop is back. A Redis that really does not answer is still cut off, after at most twice
the deadline plus the stall.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

GRACE_S = 0.01  # a timer later than this ran after a blocked loop


class lag_tolerant_timeout:
    """``async with lag_tolerant_timeout(seconds):`` (a class, not a generator context manager: every Redis call
    enters one, and a generator's machinery cost more than the timer itself)."""

    def __init__(self, seconds: float, grace: float = GRACE_S) -> None:
        self._seconds, self._grace = seconds, grace
        self._extended = False

    async def __aenter__(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._timeout = asyncio.timeout(None)
        await self._timeout.__aenter__()
        self._at = loop.time() + self._seconds
        self._handle = loop.call_at(self._at, self._check)

    def _check(self) -> None:
        now = self._loop.time()
        if now - self._at > self._grace and not self._extended:
            self._at, self._extended = now + self._seconds, True  # once: a loop that stays stuck still times out
            self._handle = self._loop.call_at(self._at, self._check)
            return
        self._timeout.reschedule(now)  # fire now (on the next iteration)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._handle.cancel()
        await self._timeout.__aexit__(kind, exc, tb)  # raises TimeoutError for a cancellation it caused
