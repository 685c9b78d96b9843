"""``guardserve train run``: prepare the data (or reuse it), train, evaluate. One run directory holds it all::

RUN/recipe.yaml  RUN/data/  RUN/state/  RUN/checkpoint/  RUN/metrics.jsonl  RUN/training.json  RUN/eval.json
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from guardserve.training.prepare import Prepared, load_prepared, prepare
from guardserve.training.recipe import Recipe

log = logging.getLogger(__name__)


def prepared_data(recipe: Recipe, run_dir: Path, base: Path | None = None) -> Prepared:
    """Reuse ``RUN/data`` when it was prepared from the same data settings; otherwise prepare it."""
    data_dir = run_dir / "data"
    manifest = data_dir / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("data_fingerprint") == recipe.data_fingerprint():
        log.info("reusing prepared data in %s", data_dir)
        return load_prepared(data_dir)
    log.info("preparing data into %s", data_dir)
    return prepare(recipe, data_dir, base)


def run(
    recipe: Recipe,
    run_dir: Path,
    *,
    resume: bool = False,
    evaluate: bool = True,
    progress: bool = True,
    privacy: bool = True,
    data_from: Path | None = None,
) -> dict[str, Any]:
    from accelerate import PartialState

    from guardserve.training.loop import train

    state = PartialState()  # under `accelerate launch`, one process per device: only the main one writes files
    run_dir.mkdir(parents=True, exist_ok=True)
    with state.main_process_first():  # the main process prepares the data; the others then reuse it
        if state.is_main_process:
            (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe.dump(), sort_keys=False))
        prepared = load_prepared(data_from) if data_from else prepared_data(recipe, run_dir)
    result = train(recipe, prepared, run_dir, resume=resume, progress=progress)
    training = {
        "steps": result.steps,
        "best_val_loss": round(result.best_val_loss, 4),
        "stopped_early": result.stopped_early,
        "seconds": round(result.seconds, 1),
        "tokens_per_second": round(result.tokens_per_second),
        "parameters": result.parameters,
        "mixed_precision": result.mixed_precision,
        "seed": recipe.seed,
    }
    summary: dict[str, Any] = {"training": training}
    if not state.is_main_process:
        return summary
    (run_dir / "training.json").write_text(json.dumps(training, indent=2, sort_keys=True) + "\n")
    if evaluate:
        from guardserve.models.checkpoint import sha256_file
        from guardserve.training.evaluate import evaluate_checkpoint

        evaluation = evaluate_checkpoint(result.checkpoint, recipe, prepared.val, privacy=privacy)
        evaluation["weights_sha256"] = sha256_file(result.checkpoint / "model.safetensors")
        (run_dir / "eval.json").write_text(json.dumps(evaluation, indent=2, sort_keys=True) + "\n")
        summary["eval"] = evaluation
    return summary
