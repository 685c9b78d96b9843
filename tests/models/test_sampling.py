from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from guardserve.models.checkpoint import read_sampling_defaults
from guardserve.models.cpu.sampling import RowSampler, SamplingError
from guardserve.models.engine import SAMPLING_EPS, SamplingDefaults, SamplingParams


def draws(params: SamplingParams, logits: torch.Tensor, n: int = 50) -> list[int]:
    sampler = RowSampler(params, logits.shape[0])
    return [sampler.choose(logits) for _ in range(n)]


def test_greedy_takes_the_argmax() -> None:
    logits = torch.tensor([0.1, 2.0, 0.5])
    sampler = RowSampler(SamplingParams(temperature=0.0), 3)
    assert sampler.plain_greedy and sampler.choose(logits) == 1


def test_same_seed_same_draws_different_seed_differs() -> None:
    logits = torch.zeros(1000)
    a = draws(SamplingParams(temperature=1.0, seed=7), logits)
    b = draws(SamplingParams(temperature=1.0, seed=7), logits)
    c = draws(SamplingParams(temperature=1.0, seed=8), logits)
    assert a == b
    assert a != c


def test_top_p_keeps_only_the_nucleus() -> None:
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    seen = set(draws(SamplingParams(temperature=1.0, top_p=0.8, seed=1), logits, n=400))
    assert seen == {0, 1}


def test_frequency_penalty_discourages_repeats() -> None:
    logits = torch.tensor([1.0, 0.9])
    sampler = RowSampler(SamplingParams(temperature=0.0, frequency_penalty=1.0), 2)
    assert not sampler.plain_greedy
    first = sampler.choose(logits)
    sampler.observe(first)
    assert (first, sampler.choose(logits)) == (0, 1)


# --- poison parameters and bad logits: never NaN, never an exception for a row that has a finite logit ---------


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(temperature=1e-300),
        SamplingParams(temperature=1e-38),
        SamplingParams(temperature=SAMPLING_EPS / 2, seed=1),
        SamplingParams(temperature=1.0, top_p=1e-46),
        SamplingParams(temperature=1.5, top_p=1e-300, seed=3),
    ],
)
def test_tiny_temperature_or_top_p_is_greedy(params: SamplingParams) -> None:
    logits = torch.tensor([0.1, 2.0, 0.5, 1.9])
    sampler = RowSampler(params, 4)
    assert params.greedy and sampler.plain_greedy
    assert draws(params, logits) == [1] * 50


def test_small_top_p_above_the_threshold_keeps_the_top_token() -> None:
    """A top_p smaller than every token's probability still keeps one token (the nucleus is never empty)."""
    logits = torch.zeros(1000)  # every token 1e-3 likely
    logits[7] = 0.01
    params = SamplingParams(temperature=1.0, top_p=2 * SAMPLING_EPS, seed=5)
    assert not params.greedy
    assert set(draws(params, logits)) == {7}


def test_temperature_that_overflows_the_logits_falls_back_to_the_argmax() -> None:
    logits = torch.tensor([-3e38, 3e38, 0.0])  # finite, but / 1e-4 is inf
    assert set(draws(SamplingParams(temperature=1e-4, seed=2), logits)) == {1}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_non_finite_logits_fall_back_to_the_finite_argmax(bad: float, temperature: float) -> None:
    logits = torch.tensor([bad, 0.5, 3.0, bad, 1.0])
    params = SamplingParams(temperature=temperature, top_p=0.9, seed=4, presence_penalty=0.5)
    assert set(draws(params, logits)) == {2}


def test_a_row_without_a_finite_logit_raises_sampling_error() -> None:
    for params in (SamplingParams(temperature=0.0), SamplingParams(temperature=1.0, seed=1)):
        with pytest.raises(SamplingError):
            RowSampler(params, 3).choose(torch.tensor([float("nan"), float("inf"), float("nan")]))


def test_unset_fields_sample_at_openai_defaults() -> None:
    logits = torch.zeros(1000)
    assert draws(SamplingParams(seed=9), logits) == draws(SamplingParams(temperature=1.0, top_p=1.0, seed=9), logits)
    assert not SamplingParams().greedy


LOGIT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    logits=st.lists(LOGIT, min_size=1, max_size=40),
    temperature=st.one_of(st.none(), st.floats(min_value=0.0, max_value=2.0)),
    top_p=st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0, exclude_min=True)),
    penalty=st.floats(min_value=-2.0, max_value=2.0),
    seed=st.integers(min_value=0, max_value=2**63 - 1),
)
def test_any_valid_parameters_pick_a_finite_token_or_fail_cleanly(
    logits: list[float], temperature: float | None, top_p: float | None, penalty: float, seed: int
) -> None:
    """Whatever the API accepts, the sampler returns a token whose logit is finite, or (no finite logit at all)
    raises SamplingError: never NaN, never a torch error."""
    row = torch.tensor(logits, dtype=torch.float32)
    params = SamplingParams(temperature=temperature, top_p=top_p, seed=seed, frequency_penalty=penalty)
    sampler = RowSampler(params, len(logits))
    for _ in range(3):
        if not bool(torch.isfinite(row).any()):
            with pytest.raises(SamplingError):
                sampler.choose(row)
            return
        token = sampler.choose(row)
        assert 0 <= token < len(logits) and math.isfinite(float(row[token]))
        sampler.observe(token)


# --- defaults: what a client gets for the fields it left unset ------------------------------------------------


def test_defaults_fill_only_unset_fields() -> None:
    greedy = SamplingDefaults(temperature=0.0)
    assert greedy.apply(SamplingParams(max_tokens=3)) == SamplingParams(max_tokens=3, temperature=0.0, top_p=1.0)
    assert greedy.apply(SamplingParams(temperature=0.8)).temperature == 0.8
    assert greedy.apply(SamplingParams(temperature=0.8, top_p=0.5)).top_p == 0.5
    assert greedy.apply(SamplingParams()).greedy


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (None, SamplingDefaults(1.0, 1.0)),
        ({"eos_token_id": 1}, SamplingDefaults(1.0, 1.0)),
        ({"do_sample": False, "temperature": 0.7}, SamplingDefaults(0.0, 1.0)),
        ({"do_sample": True}, SamplingDefaults(1.0, 1.0)),
        ({"do_sample": True, "temperature": 0.6, "top_p": 0.9}, SamplingDefaults(0.6, 0.9)),
        ({"temperature": 0.6}, SamplingDefaults(0.6, 1.0)),
        ({"do_sample": True, "temperature": 7, "top_p": "0.5"}, SamplingDefaults(1.0, 1.0)),  # out of range
        ([1, 2], SamplingDefaults(1.0, 1.0)),
    ],
)
def test_generation_config_gives_the_defaults(config: object, expected: SamplingDefaults, tmp_path: Path) -> None:
    if config is not None:
        (tmp_path / "generation_config.json").write_text(json.dumps(config))
    assert read_sampling_defaults(tmp_path) == expected


def test_broken_generation_config_gives_openai_defaults(tmp_path: Path) -> None:
    (tmp_path / "generation_config.json").write_text("{not json")
    assert read_sampling_defaults(tmp_path) == SamplingDefaults()


def test_bundled_checkpoint_is_greedy_by_default() -> None:
    bundled = Path(__file__).parents[2] / "models" / "checkpoints" / "guardserve-tiny"
    assert read_sampling_defaults(bundled) == SamplingDefaults(temperature=0.0)
