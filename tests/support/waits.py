"""Deadlines for the suite's waits. They are generous on purpose: `make test` must pass on a loaded machine (CI runs
beside other work; a load average of 8-15 on 2 cores is normal), where a cold start of a server that imports spaCy,
Presidio and torch can take minutes. Every wait polls its condition and returns as soon as it holds, so a generous
deadline costs nothing when the machine is idle; it only bounds how long a broken build takes to fail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

STARTUP_S = 300.0  # a server (thread or process) until it answers
SETTLE_S = 30.0  # a condition that follows an action: in-flight back to 0, a refund written, a lease released
SUBPROCESS_S = 600.0  # a short Python subprocess (imports the gateway, serves a few requests, exits)


def wait_until(
    predicate: Callable[[], object], timeout: float = SETTLE_S, interval: float = 0.01, what: str = ""
) -> float:
    """Poll until ``predicate()`` holds; return the seconds it took, or raise AssertionError saying what it awaited."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s: {what or predicate}")
        time.sleep(interval)


async def eventually(
    predicate: Callable[[], object | Awaitable[object]], within: float = SETTLE_S, what: str = ""
) -> float:
    """The async form of :func:`wait_until`; ``predicate`` may be a coroutine function."""
    start = time.monotonic()
    while True:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return time.monotonic() - start
        if time.monotonic() - start > within:
            raise AssertionError(f"condition not met within {within} s: {what or predicate}")
        await asyncio.sleep(0.005)
