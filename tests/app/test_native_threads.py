"""The gateway's native math pools: one thread per call for the guards' libraries, torch's left to the engine."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from guardserve.app.native_threads import NATIVE_THREAD_VARIABLES, one_native_thread


@pytest.fixture
def restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadpoolController]:
    """Pools at two threads before (as on this 2-core machine's defaults), their counts restored after."""
    for variable in NATIVE_THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    controller = ThreadpoolController()
    before = [(pool, pool.num_threads) for pool in controller.lib_controllers]
    for pool, _ in before:
        pool.set_num_threads(2)
    yield controller
    for pool, threads in before:
        pool.set_num_threads(threads)


def test_loaded_pools_get_one_thread_and_later_ones_default_to_one(restored: ThreadpoolController) -> None:
    np.ones((64, 64)) @ np.ones((64, 64))  # numpy's OpenBLAS is loaded
    limited = one_native_thread()
    numpy_blas = [p for p in ThreadpoolController().lib_controllers if "numpy" in p.filepath]
    assert numpy_blas and all(p.num_threads == 1 for p in numpy_blas)
    assert any("numpy" in p["filepath"] for p in limited)
    assert all(os.environ[v] == "1" for v in NATIVE_THREAD_VARIABLES)  # what loads later starts with one
    assert one_native_thread() == []  # nothing left to limit


def test_an_operators_setting_is_kept_and_torch_is_left_to_the_engine(
    restored: ThreadpoolController, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    torch = pytest.importorskip("torch")  # the engine extra; the gateway's base install has no torch
    torch.set_num_threads(2)
    one_native_thread()
    assert os.environ["OMP_NUM_THREADS"] == "4"
    assert torch.get_num_threads() == 2
    torch_pools = [p for p in ThreadpoolController().lib_controllers if f"{os.sep}torch{os.sep}" in p.filepath]
    assert all(p.num_threads == 2 for p in torch_pools)
