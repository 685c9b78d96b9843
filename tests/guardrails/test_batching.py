from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from guardrails.batching import MicroBatcher


async def test_concurrent_texts_share_one_call() -> None:
    seen: list[list[str]] = []

    def score(texts: Sequence[str]) -> list[float]:
        seen.append(list(texts))
        return [float(len(t)) for t in texts]

    batcher = MicroBatcher(score, max_wait=0.01)
    results = await asyncio.gather(*(batcher.submit("x" * n) for n in range(1, 21)))
    assert results == [float(n) for n in range(1, 21)]
    assert batcher.calls == 1 and len(seen[0]) == 20


async def test_full_batch_runs_without_waiting() -> None:
    batcher = MicroBatcher(lambda texts: [0.0] * len(texts), max_batch=4, max_wait=10.0)
    results = await asyncio.wait_for(asyncio.gather(*(batcher.submit("t") for _ in range(8))), timeout=2)
    assert results == [0.0] * 8 and batcher.calls == 2


async def test_a_failing_batch_fails_its_callers_only() -> None:
    def boom(texts: Sequence[str]) -> list[float]:
        raise RuntimeError("classifier down")

    batcher = MicroBatcher(boom, max_wait=0.001)
    with pytest.raises(RuntimeError, match="classifier down"):
        await batcher.submit("x")
