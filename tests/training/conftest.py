from __future__ import annotations

from pathlib import Path

import pytest

from guardserve.training.recipe import Recipe, load_recipe

ROOT = Path(__file__).resolve().parents[2]
MICRO = ROOT / "training" / "recipes" / "micro.yaml"


@pytest.fixture(scope="session")
def micro_recipe() -> Recipe:
    return load_recipe(MICRO)


@pytest.fixture(scope="session")
def micro_run(micro_recipe: Recipe, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole micro run (prepare, train, evaluate), built once per session: RUN/checkpoint, RUN/eval.json..."""
    from guardserve.training.pipeline import run

    run_dir = tmp_path_factory.mktemp("micro") / "run"
    run(micro_recipe, run_dir, progress=False)
    return run_dir
