"""Settings of the CPU engine (kept free of torch so the gateway can build it without the engine extra)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class CPUEngineConfig:
    max_batch: int = 16  # rows decoded together
    max_waiting: int = 256  # requests queued beyond the batch before we answer 503
    prefill_token_budget: int = 4096  # padded prompt tokens per prefill pass (bounds the stall for running rows)
    threads: int | None = None  # torch intra-op threads; None: half the cores (at least 1), see default_threads()
    dtype: str = "float32"


def default_threads() -> int:
    """Half the cores: the engine shares the machine with the event loop, guard threads and other processes, and
    torch's OpenMP threads spin-wait when cores are oversubscribed (measured here on 2 cores under load: 2 threads
    took 80 s for what 1 thread did in 2.8 s). For small models one thread is as fast as two anyway."""
    return max(1, (os.cpu_count() or 2) // 2)
