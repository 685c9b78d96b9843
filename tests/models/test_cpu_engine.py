"""The CPU engine on a real (tiny, untrained) checkpoint: batching, streaming, limits, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from models.cpu.config import CPUEngineConfig
from models.cpu.engine import CPUEngine
from models.engine import (
    ChatMessage,
    EngineUnavailableError,
    GenerationRequest,
    InvalidRequestError,
    SamplingParams,
)
from tests.support.waits import SETTLE_S, eventually


@pytest.fixture
async def engine(tiny_checkpoint: Path) -> AsyncIterator[CPUEngine]:
    eng = await CPUEngine.load("tiny", tiny_checkpoint, CPUEngineConfig(max_batch=8))
    yield eng
    await eng.aclose()


def chat(text: str, **sampling: object) -> GenerationRequest:
    return GenerationRequest(
        request_id=text,
        model="tiny",
        sampling=SamplingParams(**sampling),
        messages=(ChatMessage("user", text),),  # type: ignore[arg-type]
    )


async def test_stream_starts_with_admission_and_ends_with_finish(engine: CPUEngine) -> None:
    deltas = [d async for d in engine.stream(chat("hi", max_tokens=12, ignore_eos=True))]
    assert deltas[0].text == "" and deltas[0].prompt_tokens > 0 and deltas[0].finish_reason is None
    assert deltas[-1].finish_reason == "length"
    assert deltas[-1].completion_tokens == 12
    assert all(d.finish_reason is None for d in deltas[:-1])


async def test_generate_equals_joined_stream(engine: CPUEngine) -> None:
    request = chat("same", max_tokens=40, temperature=1.0, seed=3, ignore_eos=True)
    streamed = "".join([d.text async for d in engine.stream(request)])
    whole = await engine.generate(request)
    assert whole.text == streamed
    assert whole.completion_tokens == 40


async def test_seed_makes_sampling_reproducible(engine: CPUEngine) -> None:
    a = await engine.generate(chat("seeded", max_tokens=30, temperature=1.0, seed=11, ignore_eos=True))
    b = await engine.generate(chat("seeded", max_tokens=30, temperature=1.0, seed=11, ignore_eos=True))
    c = await engine.generate(chat("seeded", max_tokens=30, temperature=1.0, seed=12, ignore_eos=True))
    assert a.text == b.text
    assert a.text != c.text


async def test_batched_results_equal_solo_results(engine: CPUEngine) -> None:
    """Rows of different lengths share the batch; each must get exactly what it would get alone."""
    requests = [
        chat("short" * (i + 1), max_tokens=25 + 5 * i, temperature=1.0, seed=100 + i, ignore_eos=True) for i in range(6)
    ]
    solo = [await engine.generate(r) for r in requests]
    together = await asyncio.gather(*(engine.generate(r) for r in requests))
    assert [r.text for r in together] == [r.text for r in solo]
    assert engine.stats.peak_batch >= 4


async def test_request_joins_a_running_batch(engine: CPUEngine) -> None:
    long = asyncio.create_task(engine.generate(chat("long", max_tokens=1500, ignore_eos=True)))
    await eventually(lambda: engine.stats.running == 1, what="the long request decoding")
    short = await engine.generate(chat("short", max_tokens=10, ignore_eos=True))
    assert short.completion_tokens == 10
    assert not long.done(), "the short request had to wait for the long one: no continuous batching"
    assert engine.stats.peak_batch >= 2
    long.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await long


async def test_cancel_frees_the_slot(engine: CPUEngine) -> None:
    aborted_before = engine.stats.aborted
    stream = engine.stream(chat("cancel me", max_tokens=1500, ignore_eos=True))
    async for delta in stream:
        if delta.completion_tokens >= 3:
            break
    assert engine.inflight == 1
    await stream.aclose()
    await eventually(lambda: engine.inflight == 0, what="the cancelled request gone")
    assert engine.stats.aborted == aborted_before + 1


async def test_stop_sequence_cuts_the_text(engine: CPUEngine) -> None:
    request = chat("stop test", max_tokens=60, temperature=1.0, seed=5, ignore_eos=True)
    full = (await engine.generate(request)).text
    assert len(full) > 20
    stop = full[10:13]
    cut = full[: full.index(stop)]
    params = dict(max_tokens=60, temperature=1.0, seed=5, ignore_eos=True, stop=(stop,))
    result = await engine.generate(chat("stop test", **params))
    assert result.finish_reason == "stop"
    assert result.text == cut
    streamed = "".join([d.text async for d in engine.stream(chat("stop test", **params))])
    assert streamed == cut


async def test_prompt_longer_than_context_says_by_how_much(engine: CPUEngine) -> None:
    with pytest.raises(InvalidRequestError) as err:
        await engine.generate(chat("word " * 3000, max_tokens=5))
    assert err.value.code == "context_length_exceeded"
    assert "2048" in err.value.message and "more than fit" in err.value.message


async def test_prompt_plus_max_tokens_over_context(engine: CPUEngine) -> None:
    with pytest.raises(InvalidRequestError) as err:
        await engine.generate(chat("hello", max_tokens=2047))
    assert err.value.param == "max_tokens"
    assert "too many" in err.value.message


async def test_default_max_tokens_fills_the_context(engine: CPUEngine) -> None:
    result = await engine.generate(chat("fill", ignore_eos=True))
    assert result.finish_reason == "length"
    assert result.prompt_tokens + result.completion_tokens == engine.context_length


async def test_full_engine_answers_unavailable(tiny_checkpoint: Path) -> None:
    eng = await CPUEngine.load("tiny", tiny_checkpoint, CPUEngineConfig(max_batch=1, max_waiting=0))
    try:
        first = eng.stream(chat("one", max_tokens=1500, ignore_eos=True))
        await anext(first)
        with pytest.raises(EngineUnavailableError):
            await eng.generate(chat("two", max_tokens=5))
        await first.aclose()
    finally:
        await eng.aclose()


async def test_closed_engine_refuses_work(tiny_checkpoint: Path) -> None:
    eng = await CPUEngine.load("tiny", tiny_checkpoint)
    await eng.aclose()
    assert not (await eng.health()).ok
    with pytest.raises(EngineUnavailableError):
        await eng.generate(chat("late", max_tokens=5))


async def test_empty_prompt_is_refused_not_hung(engine: CPUEngine) -> None:
    request = GenerationRequest(request_id="e", model="tiny", sampling=SamplingParams(max_tokens=5), prompt="")
    with pytest.raises(InvalidRequestError) as err:
        await asyncio.wait_for(engine.generate(request), timeout=SETTLE_S)
    assert err.value.code == "empty_prompt"


async def test_a_failing_prefill_fails_its_requests_and_the_engine_goes_on(
    engine: CPUEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.cpu.batch import RunningBatch
    from models.engine import EngineError

    real_add = RunningBatch.add
    calls = {"n": 0}

    def add_once_broken(self: RunningBatch, prompts: list[list[int]]) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated prefill failure")
        return real_add(self, prompts)

    monkeypatch.setattr(RunningBatch, "add", add_once_broken)
    with pytest.raises(EngineError):
        await asyncio.wait_for(engine.generate(chat("doomed", max_tokens=5)), timeout=SETTLE_S)
    assert engine.inflight == 0
    result = await asyncio.wait_for(engine.generate(chat("fine", max_tokens=5, ignore_eos=True)), timeout=SETTLE_S)
    assert result.completion_tokens == 5
