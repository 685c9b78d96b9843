from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from guardserve.training import canaries
from guardserve.training.recipe import Recipe, load_recipe

pytestmark = pytest.mark.slow


def test_search_runs_tpe_trials_and_writes_a_loadable_best_recipe(micro_recipe: Recipe, tmp_path: Path) -> None:
    from guardserve.training.search import search

    result = search(micro_recipe, tmp_path, trials=2, steps=4)
    best = load_recipe(tmp_path / "best_recipe.yaml")
    assert best.train.lr == pytest.approx(result["best_params"]["train.lr"])
    assert best.train.max_steps == micro_recipe.train.max_steps  # trials are short; the recipe keeps its length
    summary = json.loads((tmp_path / "search.json").read_text())
    assert len(summary["trials"]) == 2 and summary["steps_per_trial"] == 4


def test_canaries_are_deterministic_luhn_valid_and_disjoint() -> None:
    found = canaries.make_canaries(seed=3, planted=4, controls=4)
    assert found == canaries.make_canaries(seed=3, planted=4, controls=4)
    assert [c.planted for c in found] == [True] * 4 + [False] * 4
    assert len({c.secret for c in found}) == len({c.name for c in found}) == 8
    for canary in found:
        digits = canary.secret.replace(" ", "")
        total = sum(int(d) if i % 2 == 0 else sum(divmod(int(d) * 2, 10)) for i, d in enumerate(reversed(digits)))
        assert len(digits) == 16 and total % 10 == 0
    rows = canaries.planting_records(found, repeats=10, source="s")
    assert len(rows) == 40 and len({r.key() for r in rows}) == 40  # copies differ, so exact dedupe keeps them
    assert all(r.messages is not None and found[0].secret not in r.messages[0]["content"] for r in rows)


def test_exposure_ranks_planted_against_candidates(micro_run: Path, micro_recipe: Recipe) -> None:
    from guardserve.training.evaluate import privacy, scoring

    model, tokenizer = scoring.load(micro_run / "checkpoint")
    result = privacy.exposures(model, tokenizer, micro_recipe)
    size = micro_recipe.data.canaries.candidates + 1
    assert result["max_exposure_bits"] == pytest.approx(math.log2(size), abs=1e-3)
    for canary in result["canaries"]:
        assert 1 <= canary["rank"] <= size
        assert canary["exposure_bits"] == pytest.approx(math.log2(size) - math.log2(canary["rank"]), abs=1e-3)


def test_scrubbing_removes_planted_secrets_from_the_training_data(micro_run: Path, micro_recipe: Recipe) -> None:
    from guardserve.training.canary_experiment import secrets_left

    assert secrets_left(micro_run / "data" / "train.jsonl", micro_recipe) == 0
