"""One thread per call in the native math libraries the guards use (OpenBLAS, OpenMP), never a pool per call.

The guards already run concurrently, each call on one guard-pool thread: the classifiers' numpy products,
scikit-learn's toxicity model and spaCy's NER. Left at their defaults, OpenBLAS and OpenMP start a pool of one
thread per core for each call and spin while they wait, so on a busy machine every guard call fights the guard
pool, the event loop and the engine for the same cores. Measured 2026-12-07 (``bench_gateway_overhead.py
--configs gateway-full``, one alternating run, 2 rounds, a LoRA training beside it): the full default policy cost
**5.9 ms** of gateway CPU per request with one native thread against 68.9 ms with the defaults (15.3 ms in a
quieter run an hour earlier).

torch's own pools are left alone: the CPU engine sets its thread count itself (``models/cpu``), and no guard runs
on torch (Presidio imports it only to look for a GPU).

Environment defaults cover the libraries loaded later (the feedback scrubber loads Presidio in a thread after
startup); threadpoolctl (a scikit-learn dependency) limits the ones already loaded. Explicit settings win:
``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` set by the operator are kept for libraries that load later.
"""

from __future__ import annotations

import os
from typing import Any

NATIVE_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def one_native_thread() -> list[dict[str, Any]]:
    """Limit the loaded BLAS and OpenMP libraries (except torch's) to one thread, and default the environment so
    that libraries loaded later start with one. Returns the pools it limited (threadpoolctl's description)."""
    for variable in NATIVE_THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn (a base dependency) brings it
        return []
    controller = ThreadpoolController()
    pools = [pool for pool in controller.lib_controllers if f"{os.sep}torch{os.sep}" not in pool.filepath]
    limited = []
    for pool in pools:
        if pool.num_threads != 1:
            pool.set_num_threads(1)
            limited.append(pool.info())
    return limited
