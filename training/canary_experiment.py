"""``guardserve train canary RECIPE --out DIR``: the canary experiment in one command.

Two short runs from the same recipe and seed, differing only in PII scrubbing: ``scrubbed`` (the recipe as written)
and ``unscrubbed`` (``preprocess.pii`` off). Both plant the same canaries into the raw data; both are measured
against the same never-planted control canaries. Output: ``DIR/canary.json`` and ``DIR/CANARY_REPORT.md``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from guardserve.training import canaries as canary_lib
from guardserve.training.recipe import Recipe
from guardserve.training.records import read_jsonl

log = logging.getLogger(__name__)


def secrets_left(train_file: Path, recipe: Recipe) -> int:
    """How many times the planted secrets still occur in the prepared training data (a count, never a value)."""
    config = recipe.data.canaries
    found = [c for c in canary_lib.make_canaries(recipe.seed, config.planted, config.controls) if c.planted]
    count = 0
    for record in read_jsonl(train_file):
        flat = record.flat()
        count += sum(flat.count(c.secret) for c in found)
    return count


def run_experiment(recipe: Recipe, out: Path) -> dict[str, Any]:
    from guardserve.training.evaluate import privacy, scoring
    from guardserve.training.pipeline import run

    if not recipe.preprocess.pii:
        raise ValueError("the canary experiment's recipe must enable preprocess.pii (the scrubbed arm)")
    arms = {"scrubbed": recipe, "unscrubbed": recipe.with_updates({"preprocess.pii": None})}
    results: dict[str, Any] = {}
    for label, arm in arms.items():
        run_dir = out / label
        log.info("canary experiment: %s run in %s", label, run_dir)
        summary = run(arm, run_dir, evaluate=False, progress=False)
        model, tokenizer = scoring.load(run_dir / "checkpoint")
        exposure = privacy.exposures(model, tokenizer, arm)
        exposure["planted_secret_occurrences_in_train"] = secrets_left(run_dir / "data" / "train.jsonl", arm)
        exposure["training"] = summary["training"]
        results[label] = exposure
    s, u = results["scrubbed"], results["unscrubbed"]
    summary = {
        "recipe": recipe.name,
        "candidates": s["candidates"],
        "max_exposure_bits": s["max_exposure_bits"],
        "planted": recipe.data.canaries.planted,
        "controls": recipe.data.canaries.controls,
        "repeats": recipe.data.canaries.repeats,
        "scrubbed": {k: s[k] for k in ("planted_mean_bits", "control_mean_bits", "margin_bits", "planted_max_bits")},
        "unscrubbed": {k: u[k] for k in ("planted_mean_bits", "control_mean_bits", "margin_bits", "planted_max_bits")},
        "secrets_left_in_training_data": {
            "scrubbed": s["planted_secret_occurrences_in_train"],
            "unscrubbed": u["planted_secret_occurrences_in_train"],
        },
        "scrubbed_within_1_bit_of_controls": abs(s["margin_bits"]) <= 1.0,
    }
    result = {"summary": summary, "arms": results}
    out.mkdir(parents=True, exist_ok=True)
    (out / "canary.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    (out / "CANARY_REPORT.md").write_text(report(summary))
    return result


def report(summary: dict[str, Any]) -> str:
    s, u = summary["scrubbed"], summary["unscrubbed"]
    left = summary["secrets_left_in_training_data"]
    return f"""# Canary experiment: {summary["recipe"]}

{summary["planted"]} canaries planted {summary["repeats"]} times each into the raw data, {summary["controls"]} control
canaries never planted; exposure ranks each among {summary["candidates"]} random candidates of the same format
(maximum {summary["max_exposure_bits"]} bits; a model that learned nothing gives about 1.4 bits on average).

{_row("with PII scrubbing", s, left["scrubbed"])}
{_row("without scrubbing", u, left["unscrubbed"])}

With scrubbing the planted canaries are within 1 bit of the controls: {summary["scrubbed_within_1_bit_of_controls"]}.
"""


def _row(label: str, arm: dict[str, Any], left: int) -> str:
    header = (
        "| run | planted mean (bits) | controls mean (bits) | difference | planted max | secrets left in data |\n"
        "|---|---|---|---|---|---|\n"
        if label.startswith("with ")
        else ""
    )
    values = [arm["planted_mean_bits"], arm["control_mean_bits"], arm["margin_bits"], arm["planted_max_bits"], left]
    return header + f"| {label} | " + " | ".join(str(v) for v in values) + " |"
