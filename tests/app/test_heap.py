"""The startup heap freeze: long-lived objects leave the collector's generations, garbage does not survive it."""

from __future__ import annotations

import gc
import weakref

import pytest

from guardserve.app.heap import freeze_startup_heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_freeze_collects_garbage_first_and_freezes_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()
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
        freezes: list[int] = []
        monkeypatch.setattr(gc, "freeze", lambda: freezes.append(1))
        assert freeze_startup_heap() > 0 and freezes == []  # once per process
        freeze_startup_heap(again=True)
        assert freezes == [1]  # unless asked again
        assert kept is not None
    finally:
        gc.unfreeze()
