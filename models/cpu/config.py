"""Settings of the CPU engine (kept free of torch so the gateway can build it without the engine extra).

:class:`CPUEngineConfig` is also the gateway's ``GUARDSERVE_CPU__*`` settings (``app.settings.Settings.cpu``).
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class CPUEngineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")  # as a settings section: unknown keys ignored

    max_batch: int = Field(16, ge=1, le=256)  # rows decoded together
    max_waiting: int = Field(256, ge=0)  # requests queued beyond the batch before we answer 503
    # padded prompt tokens per prefill pass (bounds the stall for running rows)
    prefill_token_budget: int = Field(4096, ge=64)
    # torch intra-op threads; None: half the cores (at least 1), see default_threads()
    threads: int | None = Field(None, ge=1)
    dtype: Literal["float32", "bfloat16"] = "float32"


def default_threads() -> int:
    """Half the cores: the engine shares the machine with the event loop, guard threads and other processes, and
    torch's OpenMP threads spin-wait when cores are oversubscribed (measured here on 2 cores under load: 2 threads
    took 80 s for what 1 thread did in 2.8 s). For small models one thread is as fast as two anyway."""
    return max(1, (os.cpu_count() or 2) // 2)
