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
import contextlib
from collections.abc import AsyncIterator

GRACE_S = 0.01  # a timer later than this ran after a blocked loop


@contextlib.asynccontextmanager
async def lag_tolerant_timeout(seconds: float, grace: float = GRACE_S) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(None) as timeout:
        state = {"at": loop.time() + seconds, "extended": False}

        def check() -> None:
            now = loop.time()
            if now - state["at"] > grace and not state["extended"]:
                state["at"], state["extended"] = now + seconds, True  # once: a loop that stays stuck still times out
                handle[0] = loop.call_at(state["at"], check)
                return
            timeout.reschedule(now)  # fire now (on the next iteration)

        handle: list[asyncio.TimerHandle] = [loop.call_at(state["at"], check)]
        try:
            yield
        finally:
            handle[0].cancel()
