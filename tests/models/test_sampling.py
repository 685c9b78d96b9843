from __future__ import annotations

import torch

from models.cpu.sampling import RowSampler
from models.engine import SamplingParams


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
