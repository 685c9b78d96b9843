from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from guardserve.guardrails.batching import MicroBatcher


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
    results = await asyncio.wait_for(asyncio.gather(*(batcher.submit(f"t{n}") for n in range(8))), timeout=30)
    assert results == [0.0] * 8 and batcher.calls == 3  # 1 at once, 4 (full), then the last 3


async def test_a_failing_batch_fails_its_callers_only() -> None:
    def boom(texts: Sequence[str]) -> list[float]:
        raise RuntimeError("classifier down")

    batcher = MicroBatcher(boom, max_wait=0.001)
    with pytest.raises(RuntimeError, match="classifier down"):
        await batcher.submit("x")


async def test_the_same_text_asked_at_once_is_scored_once() -> None:
    seen: list[str] = []

    def score(texts: Sequence[str]) -> list[float]:
        seen.extend(texts)
        return [float(len(t)) for t in texts]

    batcher = MicroBatcher(score, max_wait=1.0)
    results = await asyncio.gather(*(batcher.submit(t) for t in ["same", "same", "other", "same"]))
    assert results == [4.0, 4.0, 5.0, 4.0]
    assert sorted(seen) == ["other", "same"]
    assert await batcher.submit("same") == 4.0 and seen.count("same") == 2  # done: a later ask scores it again


async def test_a_caller_that_gives_up_does_not_cancel_the_shared_result() -> None:
    release = asyncio.Event()
    loop = asyncio.get_running_loop()

    def score(texts: Sequence[str]) -> list[float]:
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result()
        return [1.0] * len(texts)

    batcher = MicroBatcher(score)
    first = asyncio.ensure_future(batcher.submit("t"))
    second = asyncio.ensure_future(batcher.submit("t"))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == 1.0
