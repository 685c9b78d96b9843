"""Export: a servable Hugging Face checkpoint directory with everything that explains it, behind a safety gate.

``DIR`` gets: config.json, model.safetensors, tokenizer files, generation_config.json, guardserve.json,
MODEL_CARD.md, eval.json, data_manifest.json, preprocess_report.json, recipe.yaml, loss_curve.png and SHA256SUMS
(``sha256sum -c SHA256SUMS`` checks every other file). The numbers in the card are measured on the exported
weights themselves (re-evaluated when the export changes the dtype). When the recipe's thresholds are not met,
export refuses with the reasons (``--force`` overrides, and the card says so).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import yaml

from guardserve.models.checkpoint import METADATA_FILE, sha256_file, staged_directory
from guardserve.training.card import model_card
from guardserve.training.recipe import Recipe

log = logging.getLogger(__name__)


class ExportRefused(RuntimeError):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__(
            "export refused: the checkpoint does not meet the recipe's thresholds:\n  " + "\n  ".join(reasons)
        )
        self.reasons = reasons


def export(
    run_dir: Path,
    out: Path,
    recipe: Recipe,
    *,
    dtype: str = "float32",
    force: bool = False,
    evaluation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export ``run_dir/checkpoint`` to ``out``. Returns the evaluation of the exported weights."""
    from guardserve.training.evaluate import evaluate_checkpoint
    from guardserve.training.prepare import load_prepared

    source = run_dir / "checkpoint"
    if not (source / "config.json").is_file():
        raise FileNotFoundError(f"{source} is not a checkpoint (train first)")
    with staged_directory(out, ".exporting") as staging:
        _write_weights(source, staging, dtype)
        weights = sha256_file(staging / "model.safetensors")
        if evaluation is None or evaluation.get("weights_sha256") != weights:
            log.info("evaluating the exported weights (%s)", dtype)
            prepared = load_prepared(run_dir / "data") if (run_dir / "data" / "val.jsonl").is_file() else None
            evaluation = evaluate_checkpoint(staging, recipe, prepared.val if prepared else None)
            evaluation["weights_sha256"] = weights
        gate = evaluation["gate"]
        if not gate["passed"] and not force:
            raise ExportRefused(gate["reasons"])
        evaluation = {**evaluation, "export": {"dtype": dtype, "forced": bool(force and not gate["passed"])}}
        manifest = _read_json(run_dir / "data" / "manifest.json")
        report = _read_json(run_dir / "data" / "report.json")
        training = _read_json(run_dir / "training.json")
        metrics = _read_metrics(run_dir / "metrics.jsonl")
        _json(staging / "eval.json", evaluation)
        _json(staging / "data_manifest.json", manifest)
        _json(staging / "preprocess_report.json", report)
        (staging / "recipe.yaml").write_text(yaml.safe_dump(recipe.dump(), sort_keys=False))
        plot_loss(metrics, staging / "loss_curve.png")
        meta = json.loads((staging / METADATA_FILE).read_text())
        meta.update(
            trained=True,
            description=_description(recipe, evaluation),
            eval={"gate_passed": gate["passed"], "forced": evaluation["export"]["forced"]},
        )
        _json(staging / METADATA_FILE, meta)
        (staging / "MODEL_CARD.md").write_text(model_card(recipe, evaluation, manifest, report, training, dtype))
    return evaluation


def _write_weights(source: Path, target: Path, dtype: str) -> None:
    for file in source.iterdir():
        if file.is_file():
            shutil.copy2(file, target / file.name)
    if dtype == "float32":
        return
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(source / "model.safetensors"))
    cast = {k: v.to(getattr(torch, dtype)).contiguous() for k, v in tensors.items()}
    save_file(cast, str(target / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((target / "config.json").read_text())
    config["dtype"] = dtype
    config.pop("torch_dtype", None)
    _json(target / "config.json", config)


def _description(recipe: Recipe, evaluation: dict[str, Any]) -> str:
    q, s = evaluation["quality"], evaluation["safety"]
    arith = q["exact_match"].get("arithmetic")
    text = (
        f"{recipe.name}: arithmetic {_pct(arith)}, refusals {_pct(s['refusal_rate'])}, "
        f"over-refusal {_pct(s['over_refusal_rate'])} (held-out; see MODEL_CARD.md)"
    )
    if evaluation["export"]["forced"]:
        text += " - EXPORTED WITH --force: below the recipe's thresholds"
    return text


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def plot_loss(metrics: list[dict[str, Any]], file: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(m["step"], m["loss"]) for m in metrics if "loss" in m]
    val = [(m["step"], m["val_loss"]) for m in metrics if "val_loss" in m]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="training loss (assistant tokens)", linewidth=1)
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="validation loss", linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Loss curve")
    fig.tight_layout()
    fig.savefig(file, metadata={"Software": None})
    plt.close(fig)


def _read_json(file: Path) -> dict[str, Any]:
    return json.loads(file.read_text()) if file.is_file() else {}


def _read_metrics(file: Path) -> list[dict[str, Any]]:
    if not file.is_file():
        return []
    return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]


def _json(file: Path, data: Any) -> None:
    file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
