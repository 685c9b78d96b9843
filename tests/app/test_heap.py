"""The startup heap freeze: long-lived objects leave the collector's generations, garbage does not survive it."""

from __future__ import annotations

import gc
import weakref

import pytest

from guardserve.app.heap import MIDDLE, OLD, YOUNG, freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_freeze_collects_garbage_first_and_freezes_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()
    previous = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # Python's defaults
    try:
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a reference cycle: only the collector frees it
        dead = weakref.ref(a)
        del a, b
        kept = _Node()
        frozen = freeze_startup_heap()
        assert dead() is None  # collected before the freeze, not made permanent
        # frozen objects can still be freed by reference counting (another test's thread): the count only falls
        assert frozen > 0 and 0 < gc.get_freeze_count() <= frozen
        assert gc.get_threshold() == (YOUNG, MIDDLE, OLD)
        freezes: list[int] = []
        monkeypatch.setattr(gc, "freeze", lambda: freezes.append(1))
        assert freeze_startup_heap() > 0 and freezes == []  # once per process
        freeze_startup_heap(again=True)
        assert freezes == [1]  # unless asked again
        assert kept is not None
    finally:
        gc.unfreeze()
        gc.set_threshold(*previous)


async def test_what_a_warm_up_loads_after_startup_is_frozen_once_it_is_over() -> None:
    """The feedback scrubber loads Presidio in a thread after the startup freeze: freeze_after freezes that too
    (only then: while the warm-up runs, nothing is frozen again), and a failed warm-up still ends in a freeze."""
    import asyncio

    from guardserve.app.heap import freeze_after

    gc.unfreeze()
    try:
        freeze_startup_heap(again=True)
        loop = asyncio.get_running_loop()
        loaded: list[list[_Node]] = []
        release = asyncio.Event()

        async def warm_up() -> None:
            await release.wait()
            loaded.append(await loop.run_in_executor(None, lambda: [_Node() for _ in range(10_000)]))

        refreeze = asyncio.create_task(freeze_after(warm_up()))
        before = gc.get_freeze_count()
        await asyncio.sleep(0)
        assert not refreeze.done() and gc.get_freeze_count() <= before  # waits for the warm-up
        release.set()
        frozen = await asyncio.wait_for(refreeze, timeout=60)
        assert len(loaded[0]) == 10_000 and frozen >= before + 10_000  # the loaded objects left the generations

        async def fails() -> None:
            raise RuntimeError("no Presidio")

        assert await asyncio.wait_for(freeze_after(fails()), timeout=60) > 0
    finally:
        gc.unfreeze()
