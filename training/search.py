"""``guardserve train search``: Optuna (TPE) over short trials; the best recipe is written out.

The data is prepared once and shared by every trial (only training hyperparameters vary). Each trial trains
``steps`` steps and reports its validation loss at every evaluation, so the median pruner stops hopeless trials.
The objective is the best validation loss (on assistant tokens): cheap, smooth, and what the long run optimises.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import yaml

from guardserve.training.recipe import Recipe

log = logging.getLogger(__name__)

SPACE = {
    "train.lr": ("log", 3e-4, 6e-3),
    "train.weight_decay": ("log", 0.01, 2.0),
    "train.warmup_steps": ("int", 5, 100),
    "train.min_lr_ratio": ("float", 0.0, 0.3),
}


def suggest(trial: Any) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, (kind, low, high) in SPACE.items():
        if kind == "log":
            params[name] = trial.suggest_float(name, low, high, log=True)
        elif kind == "int":
            params[name] = trial.suggest_int(name, int(low), int(high))
        else:
            params[name] = trial.suggest_float(name, low, high)
    return params


def search(recipe: Recipe, out: Path, *, trials: int, steps: int, keep_runs: bool = False) -> dict[str, Any]:
    import optuna

    from guardserve.training.loop import train
    from guardserve.training.pipeline import prepared_data

    out.mkdir(parents=True, exist_ok=True)
    prepared = prepared_data(recipe, out)  # out/data, shared by all trials
    eval_every = max(1, steps // 4)

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial)
        short = recipe.with_updates(
            {
                **params,
                "train.max_steps": steps,
                "train.eval_every": eval_every,
                "train.checkpoint_every": steps,
                "train.warmup_steps": min(int(params["train.warmup_steps"]), steps // 2),
            }
        )
        run_dir = out / f"trial-{trial.number:03d}"

        def report(step: int, val_loss: float) -> None:
            trial.report(val_loss, step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:
            result = train(short, prepared, run_dir, progress=False, on_eval=report)
        finally:
            if not keep_runs and run_dir.exists():
                shutil.rmtree(run_dir)
        return result.best_val_loss

    sampler = optuna.samplers.TPESampler(seed=recipe.seed)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=eval_every)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner, study_name=recipe.name)
    study.optimize(objective, n_trials=trials)

    best = study.best_trial
    best_recipe = recipe.with_updates(dict(best.params))
    (out / "best_recipe.yaml").write_text(
        f"# Best of {trials} trials ({steps} steps each) by `guardserve train search`; validation loss "
        f"{best.value:.4f}.\n" + yaml.safe_dump(best_recipe.dump(), sort_keys=False)
    )
    rows = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params} for t in study.trials]
    summary = {"best_value": best.value, "best_params": best.params, "trials": rows, "steps_per_trial": steps}
    (out / "search.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return {"best_value": best.value, "best_params": best.params, "best_recipe": str(out / "best_recipe.yaml")}
