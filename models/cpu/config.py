"""Settings of the CPU engine (kept free of torch so the gateway can build it without the engine extra)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CPUEngineConfig:
    max_batch: int = 16  # rows decoded together
    max_waiting: int = 256  # requests queued beyond the batch before we answer 503
    prefill_token_budget: int = 4096  # padded prompt tokens per prefill pass (bounds the stall for running rows)
    threads: int | None = None  # torch intra-op threads; None = torch's default
    dtype: str = "float32"
