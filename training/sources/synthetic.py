"""The project's synthetic generator as a source. Its "input files" are the generator's own modules: their
sha256s pin exactly which templates and fact table produced the data."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from guardserve.training import canaries
from guardserve.training.recipe import Recipe, SyntheticSource
from guardserve.training.records import Record
from guardserve.training.sources.base import Loaded, input_file
from guardserve.training.synthetic import generate_training

GENERATOR = Path(__file__).resolve().parents[1] / "synthetic"


def load_synthetic(spec: SyntheticSource, recipe: Recipe, base: Path | None) -> Loaded:
    records: list[Record] = generate_training({str(k): v for k, v in spec.tasks.items()}, recipe.seed, source=spec.name)
    planted = 0
    if spec.plant_canaries:
        config = recipe.data.canaries
        found = canaries.make_canaries(recipe.seed, config.planted, config.controls)
        extra = canaries.planting_records(found, config.repeats, spec.name)
        planted = len(extra)
        records = _interleave(records, extra, recipe.seed)
    modules = [*sorted(GENERATOR.glob("*.py")), Path(canaries.__file__)]
    root = GENERATOR.parents[1]
    notes = {"tasks": dict(sorted(Counter(r.task for r in records).items())), "canary_rows": planted}
    return Loaded(records, [input_file(m, root) for m in modules], notes)


def _interleave(records: list[Record], extra: list[Record], seed: int) -> list[Record]:
    import random

    out = records + extra
    random.Random(f"plant:{seed}").shuffle(out)
    return out
