"""Coalescer: a lone write goes at once; writes queued behind one in flight go together; errors reach their callers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from guardserve.app.store.coalesce import Coalescer


class Flush:
    """Records every batch; each flush waits until the test opens ``gate``."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.fail_next = False

    async def __call__(self, batch: Sequence[int]) -> None:
        self.batches.append(list(batch))
        await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("redis went away")


async def until(condition: object, what: str) -> None:
    for _ in range(10_000):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(what)


async def test_a_lone_write_is_sent_at_once_and_later_ones_together() -> None:
    flush = Flush()
    coalescer = Coalescer(flush)
    first = asyncio.create_task(coalescer.submit(1))
    await until(lambda: flush.batches == [[1]], "the first write is sent alone, without waiting")
    rest = [asyncio.create_task(coalescer.submit(n)) for n in (2, 3, 4)]
    await until(lambda: all(not t.done() for t in rest), "queued")
    flush.gate.set()
    await asyncio.wait_for(asyncio.gather(first, *rest), 30)
    assert flush.batches == [[1], [2, 3, 4]]


async def test_max_batch_splits() -> None:
    flush = Flush()
    flush.gate.set()
    coalescer = Coalescer(flush, max_batch=2)
    await asyncio.wait_for(asyncio.gather(*(coalescer.submit(n) for n in range(5))), 30)
    assert flush.batches == [[0, 1], [2, 3], [4]]  # all five arrived in one loop iteration


async def test_a_failed_batch_fails_its_callers_only() -> None:
    flush = Flush()
    coalescer = Coalescer(flush)
    flush.fail_next = True
    first = asyncio.create_task(coalescer.submit(1))
    await until(lambda: flush.batches == [[1]], "sent")
    second = asyncio.create_task(coalescer.submit(2))
    await asyncio.sleep(0)
    flush.gate.set()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(first, 30)
    await asyncio.wait_for(second, 30)  # the next batch went through
    assert flush.batches == [[1], [2]]
