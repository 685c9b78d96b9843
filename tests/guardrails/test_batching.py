from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from guardrails.batching import MicroBatcher


async def test_idle_text_goes_at_once_then_concurrent_texts_share_one_call() -> None:
    seen: list[list[str]] = []

    def score(texts: Sequence[str]) -> list[float]:
        seen.append(list(texts))
        return [float(len(t)) for t in texts]

    batcher = MicroBatcher(score, max_wait=1.0)
    results = await asyncio.gather(*(batcher.submit("x" * n) for n in range(1, 21)))
    assert results == [float(n) for n in range(1, 21)]
    assert [len(batch) for batch in seen] == [1, 19]  # no waiting when idle; the rest batched behind it


async def test_full_batch_runs_without_waiting() -> None:
    batcher = MicroBatcher(lambda texts: [0.0] * len(texts), max_batch=4, max_wait=10.0)
    results = await asyncio.wait_for(asyncio.gather(*(batcher.submit("t") for _ in range(8))), timeout=2)
    assert results == [0.0] * 8 and batcher.calls == 3  # 1 at once, 4 (full), then the last 3


async def test_a_failing_batch_fails_its_callers_only() -> None:
    def boom(texts: Sequence[str]) -> list[float]:
        raise RuntimeError("classifier down")

    batcher = MicroBatcher(boom, max_wait=0.001)
    with pytest.raises(RuntimeError, match="classifier down"):
        await batcher.submit("x")
