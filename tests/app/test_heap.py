"""The startup heap freeze: long-lived objects leave the collector's generations, garbage does not survive it."""

from __future__ import annotations

import gc
import weakref

from guardserve.app.heap import freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_freeze_collects_garbage_first_and_freezes_the_rest() -> None:
    gc.unfreeze()
    try:
        a, b = _Node(), _Node()
        a.other, b.other = b, a  # a reference cycle: only the collector frees it
        dead = weakref.ref(a)
        del a, b
        kept = _Node()
        frozen = freeze_startup_heap()
        assert dead() is None  # collected before the freeze, not made permanent
        assert frozen > 0 and gc.get_freeze_count() == frozen
        assert freeze_startup_heap() == frozen  # once per process unless asked again
        assert kept is not None
    finally:
        gc.unfreeze()
