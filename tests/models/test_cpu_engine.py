"""The CPU engine on a real (tiny, untrained) checkpoint: batching, streaming, limits, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from guardserve.models.cpu.config import CPUEngineConfig
from guardserve.models.cpu.engine import CPUEngine
from guardserve.models.engine import (
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
    from guardserve.models.cpu.batch import RunningBatch
    from guardserve.models.engine import EngineError

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


# --- one request's failure is its own ------------------------------------------------------------------------

POISON = [
    {"temperature": 1e-300},
    {"temperature": 1e-38, "seed": 1},
    {"temperature": 1.0, "top_p": 1e-46},
    {"temperature": 2.0, "top_p": 1e-300, "seed": 2},
]


def normal(i: int) -> GenerationRequest:
    return chat(f"normal {i}", max_tokens=30 + i, temperature=1.0, seed=200 + i, ignore_eos=True)


def completion(text: str, **sampling: object) -> GenerationRequest:
    return GenerationRequest(request_id=text, model="tiny", sampling=SamplingParams(**sampling), prompt=text)  # type: ignore[arg-type]


async def test_poison_sampling_parameters_are_greedy_and_fail_nobody_else(engine: CPUEngine) -> None:
    """Tiny temperatures and top_p interleaved with normal requests in one batch: the normal ones get exactly
    what they get alone, the poison ones get the greedy answer."""
    normals = [normal(i) for i in range(4)]
    poisons = [completion("the cat sat on", max_tokens=12, ignore_eos=True, **p) for p in POISON]
    solo = [await engine.generate(r) for r in normals]
    greedy = await engine.generate(completion("the cat sat on", max_tokens=12, ignore_eos=True, temperature=0.0))
    assert greedy.text.strip()
    mixed = [r for pair in zip(normals, poisons, strict=True) for r in pair]
    results = await asyncio.wait_for(asyncio.gather(*(engine.generate(r) for r in mixed)), timeout=120)
    assert [r.text for r in results[0::2]] == [r.text for r in solo]
    assert [r.text for r in results[1::2]] == [greedy.text] * len(POISON)
    assert engine.stats.peak_batch >= 4


async def test_a_row_that_cannot_be_sampled_fails_alone(engine: CPUEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A row whose logits are all NaN fails its own request; the rows beside it go on untouched."""
    from guardserve.models.engine import EngineError

    normals = [normal(i) for i in range(3)]
    solo = [await engine.generate(r) for r in normals]
    doomed = chat("doomed row", max_tokens=1500, ignore_eos=True)
    real_advance = CPUEngine._advance

    def advance_with_a_bad_row(self: CPUEngine, seqs: list[Any], logits: torch.Tensor, outbox: list[Any]) -> None:
        for row, seq in enumerate(seqs):
            if seq.request is doomed and seq.generated >= 5:
                logits[row] = float("nan")
        real_advance(self, seqs, logits, outbox)

    monkeypatch.setattr(CPUEngine, "_advance", advance_with_a_bad_row)
    doomed_task = asyncio.ensure_future(engine.generate(doomed))
    results = await asyncio.wait_for(asyncio.gather(*(engine.generate(r) for r in normals)), timeout=120)
    assert [r.text for r in results] == [r.text for r in solo]
    with pytest.raises(EngineError):
        await asyncio.wait_for(doomed_task, timeout=60)
    assert engine.inflight == 0


async def test_partly_nan_logits_are_skipped_not_chosen(engine: CPUEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Greedy rows (the batch-wide argmax fast path too) never pick a NaN logit: the same text as when those
    logits are -inf."""
    from guardserve.models.cpu.batch import RunningBatch

    real_step = RunningBatch.step
    filler: dict[str, float] = {"value": float("-inf")}

    def step_with_bad_columns(self: RunningBatch, next_tokens: list[int]) -> torch.Tensor:
        logits = real_step(self, next_tokens)
        logits[:, :40] = filler["value"]
        return logits

    monkeypatch.setattr(RunningBatch, "step", step_with_bad_columns)
    requests = [completion(f"{i} 2 3", max_tokens=15, ignore_eos=True, temperature=0.0) for i in range(3)]
    requests.append(completion("abc", max_tokens=15, ignore_eos=True, temperature=0.0, presence_penalty=0.5))
    masked = await asyncio.gather(*(engine.generate(r) for r in requests))
    filler["value"] = float("nan")
    with_nan = await asyncio.gather(*(engine.generate(r) for r in requests))
    assert [r.text for r in with_nan] == [r.text for r in masked]
    assert all(r.completion_tokens == 15 for r in with_nan)


async def test_a_failing_prefill_fails_only_its_own_request(engine: CPUEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefilled together with others, a prompt whose prefill fails is retried alone and fails alone."""
    from guardserve.models.cpu.batch import RunningBatch
    from guardserve.models.engine import EngineError

    normals = [normal(i) for i in range(4)]
    solo = [await engine.generate(r) for r in normals]
    poison_ids = engine._encode(chat("poisoned prompt"))
    real_add = RunningBatch.add

    def add_refusing_the_poison(self: RunningBatch, prompts: list[list[int]]) -> torch.Tensor:
        if poison_ids in prompts:
            raise RuntimeError("simulated prefill failure")
        return real_add(self, prompts)

    monkeypatch.setattr(RunningBatch, "add", add_refusing_the_poison)
    mixed = [normals[0], normals[1], chat("poisoned prompt", max_tokens=5), normals[2], normals[3]]
    results = await asyncio.wait_for(
        asyncio.gather(*(engine.generate(r) for r in mixed), return_exceptions=True), timeout=120
    )
    assert isinstance(results[2], EngineError)
    assert [getattr(r, "text", r) for r in results[:2] + results[3:]] == [r.text for r in solo]
    assert engine.inflight == 0


# --- defaults from the checkpoint's generation config --------------------------------------------------------


def checkpoint_with(tiny_checkpoint: Path, directory: Path, generation_config: Mapping[str, object]) -> Path:
    shutil.copytree(tiny_checkpoint, directory)
    (directory / "generation_config.json").write_text(json.dumps(generation_config))
    return directory


async def test_greedy_generation_config_makes_unset_temperature_greedy(tiny_checkpoint: Path, tmp_path: Path) -> None:
    path = checkpoint_with(tiny_checkpoint, tmp_path / "greedy", {"do_sample": False, "eos_token_id": 1})
    eng = await CPUEngine.load("tiny", path)
    try:
        unset = [await eng.generate(completion("the cat sat on", max_tokens=20, ignore_eos=True)) for _ in range(3)]
        explicit = await eng.generate(completion("the cat sat on", max_tokens=20, ignore_eos=True, temperature=0.0))
        sampled = await eng.generate(
            completion("the cat sat on", max_tokens=20, ignore_eos=True, temperature=1.0, seed=1)
        )
    finally:
        await eng.aclose()
    assert explicit.text.strip()
    assert [r.text for r in unset] == [explicit.text] * 3
    assert sampled.text != explicit.text  # the client's own temperature still wins


async def test_sampling_generation_config_gives_its_temperature_and_top_p(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    config = {"do_sample": True, "temperature": 0.6, "top_p": 0.8}
    eng = await CPUEngine.load("tiny", checkpoint_with(tiny_checkpoint, tmp_path / "sampled", config))
    try:
        unset = await eng.generate(chat("defaults", max_tokens=30, ignore_eos=True, seed=21))
        same = await eng.generate(chat("defaults", max_tokens=30, ignore_eos=True, seed=21, temperature=0.6, top_p=0.8))
        other = await eng.generate(chat("defaults", max_tokens=30, ignore_eos=True, seed=21, temperature=1.0))
    finally:
        await eng.aclose()
    assert unset.text == same.text
    assert unset.text != other.text
