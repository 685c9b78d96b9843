"""Writes that arrive while one is on its way to Redis go together in the next round trip.

A write alone is sent at once (no added latency when the gateway is quiet); under load, everything that queued
behind the round trip in flight goes in one pipeline, so the Redis client's per-call cost (timeout, slot, retry,
parse) is paid once per batch rather than once per request. Each caller still waits for its own write and sees
its batch's error. (The limiter's settlements do the same with their own bookkeeping; see
:mod:`guardserve.app.limits.redis_limiter`.) No library here does this for redis-py's asyncio client: its
pipelines batch only what one caller puts in them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Coalescer(Generic[T]):
    def __init__(self, flush: Callable[[Sequence[T]], Awaitable[object]], max_batch: int = 256) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._queued: list[tuple[T, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Return once ``item`` has been flushed (in some batch); raise what that batch's flush raised."""
        done = asyncio.get_running_loop().create_future()
        self._queued.append((item, done))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send())
        await done

    async def _send(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued[: self._max_batch], self._queued[self._max_batch :]
                try:
                    await self._flush([item for item, _ in batch])
                except BaseException as exc:
                    for _, done in batch:
                        if not done.done():  # a caller that stopped waiting has cancelled its future
                            done.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise  # cancelled (shutdown): the callers of later batches are cancelled below
                else:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._sender = None
            for _, done in self._queued:  # only after a cancellation: nothing will send them
                done.cancel()
            self._queued = []
