"""Publish a ``guardserve train dpo --lora-rank`` run's adapter as the release ``models/adapters/guardserve-smol-dpo``.

The DPO adapter was trained on the supervised adapter's merged model (``init_from``), so it is only meaningful on
top of it: ``guardserve models import-smollm2`` merges the chain in order (:data:`guardserve.models.smollm2.ADAPTERS`).
The release holds the adapter, the recipe, a manifest (the base, the adapters under it with their sha256, the
pairs' files with sha256 and count, the DPO settings, loss and margin at the start and the end), the evaluation
results given (``chat-eval --out`` JSON: dev, and the independent test split) and a card written from them::

    python -m guardserve.training.publish_dpo runs/smol-c6/dpo-120 --recipe training/recipes/smol-dpo-c6.yaml \\
        --dev-eval runs/smol-c6/dev.json --test-eval runs/smol-c6/test.json
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from guardserve.models.checkpoint import sha256_file, staged_directory
from guardserve.models.smollm2 import (
    ADAPTERS,
    DPO_ADAPTER_DIR,
    GGUF_SHA256,
    LICENCE,
    UPSTREAM,
    WHEEL,
    WHEEL_VERSION,
)
from guardserve.training.evaluate.chat_eval import markdown

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def publish_dpo(
    run: Path,
    target: Path,
    recipe: Path,
    under: Sequence[Path],
    evaluations: dict[str, Path],
) -> dict[str, Any]:
    """Write the release to ``target`` (replacing it) and return its manifest. ``under``: the adapters the run's
    start checkpoint was made of, in merge order; ``evaluations``: ``{"dev": F, "test": F}`` chat-eval JSON files."""
    summary = json.loads((run / "dpo.json").read_text())
    if not summary["config"]["lora_rank"]:
        raise ValueError(f"{run}: a whole-model DPO run has no adapter to publish")
    with staged_directory(target, ".publishing") as staging:  # world-readable (peft writes the weights 0600)
        for name in ADAPTER_FILES:
            shutil.copy2(run / "adapter" / name, staging / name)
        config = json.loads((staging / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = "models/checkpoints/guardserve-smol (the adapters under this one, merged)"
        (staging / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
        shutil.copy2(recipe, staging / "recipe.yaml")
        results = {}
        for split, path in evaluations.items():
            shutil.copy2(path, staging / f"{split}_eval.json")
            results[split] = json.loads(path.read_text())
        manifest = {
            "recipe": yaml.safe_load(recipe.read_text())["name"],
            "base": {
                "model": UPSTREAM,
                "wheel": f"{WHEEL}=={WHEEL_VERSION}",
                "gguf_sha256": GGUF_SHA256,
                "licence": LICENCE,
            },
            "trained_on": [
                {"adapter": a.name, "adapter_sha256": sha256_file(a / "adapter_model.safetensors")} for a in under
            ],
            "adapter_sha256": sha256_file(staging / "adapter_model.safetensors"),
            "pairs": summary["pairs"],
            "dpo": summary["config"],
            "start": summary["start"],
            "end": summary["end"],
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        (staging / "MODEL_CARD.md").write_text(dpo_card(manifest, results))
    return manifest


def dpo_card(manifest: dict[str, Any], results: dict[str, dict[str, Any]]) -> str:
    """MODEL_CARD.md of a published DPO adapter: what it sits on, how it was trained, its evaluations."""
    base, dpo = manifest["base"], manifest["dpo"]
    chain = " + ".join(f"`{a['adapter']}` (sha256 `{a['adapter_sha256'][:16]}…`)" for a in manifest["trained_on"])
    pairs = ", ".join(f"`{Path(f).name}` (sha256 `{d[:16]}…`)" for f, d in manifest["pairs"]["files"].items())
    start, end = manifest["start"], manifest["end"]
    parts = [
        f"# Model card: {manifest['recipe']} (DPO LoRA adapter of guardserve-smol, merged after "
        f"{len(manifest['trained_on'])} adapter(s))\n",
        "## What it sits on\n",
        f"- {base['model']}, licence **{base['licence']}**; GGUF sha256 `{base['gguf_sha256']}`.",
        f"- Trained on the base with {chain} merged; `guardserve models import-smollm2` merges that chain, then "
        f"this adapter (sha256 `{manifest['adapter_sha256']}`), into the served `guardserve-smol`.\n",
        "## Training (DPO, Rafailov et al. 2023; our loop in training/preference.py)\n",
        f"- LoRA r={dpo['lora_rank']} (alpha {2 * dpo['lora_rank']}), beta {dpo['beta']}, AdamW lr {dpo['lr']}, "
        f"{dpo['steps']} steps of {dpo['batch_pairs']} pairs, + {dpo['sft_weight']} x the chosen answers' NLL, "
        f"seed {dpo['seed']}; the frozen reference is the start checkpoint.",
        f"- Pairs: {manifest['pairs']['count']} rows from {pairs}.",
        f"- Loss / reward margin / reward accuracy: step 1 {start['loss']:.2f} / {start['margin']:.2f} / "
        f"{start['accuracy']:.2f}; last step {end['loss']:.2f} / {end['margin']:.2f} / {end['accuracy']:.2f}.",
        "- Every configuration tried, the selection rule (dev only) and the commands: `recipe.yaml`.\n",
    ]
    titles = {"dev": "Dev (evaluation/smol/dev.jsonl; choices were made here)",
              "test": "Independent test set (evaluation/smol/test.jsonl; no choice was made on it)"}  # fmt: skip
    for split, data in results.items():
        parts += [f"## {titles.get(split, split)}\n", markdown(data["results"]), ""]
    parts += [
        "## Limitations\n",
        "- A 135M-parameter model: refusal is learnt from a few hundred synthetic pairs and can be talked around;"
        " it still over-refuses benign look-alikes (see the tables). Serve it behind the gateway's guardrails.",
        "",
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m guardserve.training.publish_dpo")
    p.add_argument("run", type=Path, help="a `guardserve train dpo --lora-rank R` run directory")
    p.add_argument("--recipe", type=Path, required=True, help="the record of the run (training/recipes/...)")
    p.add_argument("--dev-eval", type=Path, help="chat-eval --out JSON on the dev split")
    p.add_argument("--test-eval", type=Path, help="chat-eval --out JSON on the test split")
    p.add_argument("--target", type=Path, default=DPO_ADAPTER_DIR,
                   help="an adapter folder of the import chain (smollm2.py ADAPTERS), not the first")  # fmt: skip
    args = p.parse_args(argv)
    evaluations = {k: v for k, v in (("dev", args.dev_eval), ("test", args.test_eval)) if v is not None}
    target = args.target.resolve()
    if target not in ADAPTERS[1:]:
        p.error(f"--target must be one of {', '.join(str(a) for a in ADAPTERS[1:])}")
    under = ADAPTERS[: ADAPTERS.index(target)]  # the adapters merged before this one at import
    publish_dpo(args.run, target, args.recipe, under, evaluations)
    print(f"published {args.run} -> {args.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
