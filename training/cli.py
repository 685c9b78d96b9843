"""``guardserve train ...``: the trainer's command line (dispatched lazily from :mod:`guardserve.app.cli`).

guardserve train prepare RECIPE --out DIR            # data only: manifest, report, splits, tokenizer
guardserve train run RECIPE --out RUN [--resume]     # prepare (or reuse) + train + eval -> RUN/eval.json
guardserve train eval CKPT [--recipe R] [--data D]   # evaluate any checkpoint directory
guardserve train chat-eval CKPT.. --set F [--seeds greedy 1]  # chat model: refusal/helpful, model vs system
guardserve train export RUN --out DIR [--dtype bfloat16] [--force]
guardserve train search RECIPE --out DIR --trials N  # Optuna TPE over short trials -> best recipe
guardserve train canary RECIPE --out DIR             # the canary experiment: with vs without PII scrubbing
guardserve train guards --out DIR [--features F] [--ngrams A L H] [--class-weight balanced] [--c-grid C..]
                             [--no-identity-balance] [--seed N]  # the semantic guard heads (training/guards)
guardserve train guards-encoder static|onnx --out DIR  # distil / export the guards' sentence encoder
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any


def parser() -> argparse.ArgumentParser:
    train = argparse.ArgumentParser(prog="guardserve train", description="the trainer: data, training, evaluation")
    tsub = train.add_subparsers(dest="train_command", required=True)

    p = tsub.add_parser("prepare", help="load, clean and split the data; train the tokenizer")
    p.add_argument("recipe", type=Path)
    p.add_argument("--out", type=Path, required=True)

    r = tsub.add_parser("run", help="prepare (or reuse) the data, train, evaluate")
    r.add_argument("recipe", type=Path)
    r.add_argument("--out", type=Path, required=True, help="run directory")
    r.add_argument("--resume", action="store_true", help="continue from RUN/state")
    r.add_argument("--seed", type=int, help="override the recipe's seed")
    r.add_argument("--max-steps", type=int, help="override train.max_steps")
    r.add_argument("--no-eval", action="store_true")
    r.add_argument("--no-progress", action="store_true")

    e = tsub.add_parser("eval", help="evaluate a checkpoint directory (writes eval.json next to it or to --out)")
    e.add_argument("checkpoint", type=Path)
    e.add_argument("--recipe", type=Path, help="default: CKPT/recipe.yaml, else CKPT/../recipe.yaml")
    e.add_argument("--data", type=Path, help="prepared data dir for validation perplexity (default: CKPT/../data)")
    e.add_argument("--out", type=Path, help="where to write the JSON (default: print only)")
    e.add_argument("--no-privacy", action="store_true", help="skip the canary exposure (faster)")

    x = tsub.add_parser("export", help="export a run's checkpoint with card, eval, manifests; gated")
    x.add_argument("run", type=Path)
    x.add_argument("--out", type=Path, required=True)
    x.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    x.add_argument("--force", action="store_true", help="export even below the thresholds (the card says so)")

    s = tsub.add_parser("search", help="Optuna TPE hyperparameter search over short trials")
    s.add_argument("recipe", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--trials", type=int, default=8)
    s.add_argument("--steps", type=int, default=150, help="training steps per trial")

    c = tsub.add_parser("canary", help="canary exposure with and without PII scrubbing (two short runs)")
    c.add_argument("recipe", type=Path)
    c.add_argument("--out", type=Path, required=True)

    g = tsub.add_parser("guards", help="train the semantic guard heads (toxicity, harmful_request, prompt_injection)")
    g.add_argument("--out", type=Path, required=True, help="artifact directory (e.g. models/guards/guardserve-guards)")
    g.add_argument("--encoder", choices=["static", "onnx"], default="static")
    g.add_argument(
        "--encoder-dir", type=Path, help="encoder directory (default: the kind's default, exported if absent)"
    )
    g.add_argument("--dev", type=Path, default=Path("evaluation/guards"), help="directory of {task}.dev.jsonl")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--features", choices=["auto", "encoder", "encoder+chars"], default="auto")
    g.add_argument("--task", action="append", help="train only this task (repeatable; default: all)")
    g.add_argument("--no-identity-balance", action="store_true", help="naive data: no identity-swapped neutral text")
    g.add_argument("--c-grid", type=float, nargs="+", help="regularisation strengths dev chooses from")
    g.add_argument("--class-weight", choices=["balanced"], help="class weights of the logistic regression")
    g.add_argument("--ngrams", nargs=3, metavar=("ANALYZER", "LOW", "HIGH"), help="hashed n-grams (char_wb 2 4)")
    g.add_argument("--extra-ngrams", nargs=3, metavar=("ANALYZER", "LOW", "HIGH"),
                   help="a second set of hashed n-grams beside --ngrams (e.g. word 1 2)")  # fmt: skip

    d = tsub.add_parser(
        "dpo", help="DPO on a feedback export's preference pairs, from a checkpoint (training/preference)"
    )
    d.add_argument("checkpoint", type=Path, help="the served checkpoint (policy and frozen reference start here)")
    d.add_argument("--pairs", type=Path, required=True, help="an export's preference/ folder or pairs-v1.jsonl")
    d.add_argument("--out", type=Path, required=True, help="run directory: checkpoint/ and dpo.json")
    d.add_argument("--replay", type=Path, help="an export's sft/ folder: its rated-up answers are replayed (NLL)")
    d.add_argument("--save-steps", type=int, nargs="+", default=[], metavar="STEP",
                   help="also save the model after these steps to OUT/checkpoint-STEP")  # fmt: skip
    _dpo_options(d, holdout=0.0, sft_weight=0.0)

    im = tsub.add_parser(
        "improve", help="a feedback export -> DPO from the served checkpoint -> the gate -> registered as candidate"
    )
    im.add_argument("model", help="the registry's model name (its stable version's checkpoint is where DPO starts)")
    im.add_argument("--export", type=Path, required=True, help="what `guardserve feedback export --out` wrote")
    im.add_argument("--label", required=True, help="the candidate version's label")
    im.add_argument("--percent", type=float, default=10.0, help="the candidate's share of the traffic")
    im.add_argument("--registry", type=Path, help="default: $GUARDSERVE_REGISTRY, else models/registry.yaml")
    im.add_argument("--out", type=Path, help="run directory (default runs/improve-MODEL-LABEL)")
    _dpo_options(im, holdout=0.2, sft_weight=1.0)  # gated by default on the checkpoint's own recipe.yaml

    ge = tsub.add_parser("guards-encoder", help="distil (static) or export (onnx) the guards' sentence encoder")
    ge.add_argument("kind", choices=["static", "onnx"])
    ge.add_argument("--out", type=Path, required=True)
    ge.add_argument("--pca-dims", type=int, default=256, help="static: dimensions kept by PCA")
    ge.add_argument("--fp32", action="store_true", help="onnx: skip the int8 quantisation")
    return train


def _dpo_options(p: argparse.ArgumentParser, *, holdout: float, sft_weight: float) -> None:
    """The training and gate options `train dpo` and `improve` share (their defaults for these two differ)."""
    p.add_argument("--beta", type=float, default=0.1)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch-pairs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sft-weight", type=float, default=sft_weight, help="+ this x the chosen answers' token NLL")
    p.add_argument("--holdout", type=float, default=holdout, help="fraction of the prompts kept out for the gate")
    p.add_argument("--replay-weight", type=float, default=1.0, help="weight of the replayed answers' token NLL")
    p.add_argument("--lora-rank", type=int, default=0, help="> 0: a LoRA adapter of this rank, merged when saved")
    p.add_argument("--gate-recipe", type=Path, help="gate against the checkpoint on this recipe's held-out suites")
    p.add_argument("--gate-set", type=Path, help="or on this chat-eval prompt set (e.g. evaluation/smol/dev.jsonl)")
    p.add_argument("--gate-per-task", type=int, help="held-out prompts per task (default: the recipe's)")
    p.add_argument("--tolerance", type=float, default=0.02, help="how much any suite number may regress")


def _recipe(path: Path, seed: int | None = None, max_steps: int | None = None) -> Any:
    from guardserve.training.recipe import load_recipe

    recipe = load_recipe(path)
    updates: dict[str, Any] = {}
    if seed is not None:
        updates["seed"] = seed
    if max_steps is not None:
        updates["train.max_steps"] = max_steps
    return recipe.with_updates(updates) if updates else recipe


def _find_recipe(checkpoint: Path, given: Path | None) -> Path:
    for candidate in (given, checkpoint / "recipe.yaml", checkpoint.parent / "recipe.yaml"):
        if candidate is not None and candidate.is_file():
            return candidate
    raise SystemExit(f"no recipe found for {checkpoint}: pass --recipe")


def _improve(args: argparse.Namespace) -> int:
    """The weekly loop after `guardserve feedback export`: DPO on its pairs from the model's stable checkpoint, the
    regression gate against that checkpoint, and, only when it passes, the candidate in the registry."""
    from guardserve.models import registry_edit
    from guardserve.models.registry import RegistryError, load_registry, registry_path

    registry = registry_path(args.registry)
    try:
        entry = next(e for e in load_registry(registry) if e.name == args.model)
    except StopIteration:
        print(f"error: {registry} has no model {args.model!r}", file=sys.stderr)
        return 2
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if entry.engine != "cpu" or entry.checkpoint is None:
        print(f"error: {args.model!r} is not served from a checkpoint here (engine {entry.engine})", file=sys.stderr)
        return 2
    args.out = args.out or Path("runs") / f"improve-{args.model}-{args.label}"
    if args.gate_set is None:
        args.gate_recipe = args.gate_recipe or entry.checkpoint / "recipe.yaml"
    sft = args.export / "sft"
    replay = sft if args.replay_weight and sft.is_dir() else None
    status = _dpo_and_gate(args, entry.checkpoint, args.export / "preference", replay)
    if status != 0:
        print(f"not registered: the candidate did not pass (exit {status}); {registry} is unchanged", file=sys.stderr)
        return status
    checkpoint = (args.out / "checkpoint").resolve()
    registry_edit.add_candidate(registry, args.model, args.label, args.percent, checkpoint=str(checkpoint))
    print(f"{args.model}: candidate {args.label} ({checkpoint}) registered with {args.percent:g}% of the traffic")
    print("apply it: POST /admin/models/reload (or SIGHUP); then `guardserve feedback report` decides promote/rollback")
    return 0


def _dpo_and_gate(args: argparse.Namespace, checkpoint: Path, pairs: Path, replay: Path | None) -> int:
    """`train dpo` (and `improve`'s training step): DPO from ``checkpoint`` into ``args.out``, then, with a gate
    recipe or set, the gate against ``checkpoint``: 0, or 3 with the reasons printed."""
    from guardserve.training.preference import DPOConfig, gate_candidate, run_dpo

    config = DPOConfig(
        beta=args.beta,
        lr=args.lr,
        steps=args.steps,
        batch_pairs=args.batch_pairs,
        seed=args.seed,
        sft_weight=args.sft_weight,
        replay_weight=args.replay_weight if replay is not None else 0.0,
        lora_rank=args.lora_rank,
    )
    save_steps = getattr(args, "save_steps", [])  # `improve` has no --save-steps
    summary = run_dpo(checkpoint, pairs, args.out, config, holdout=args.holdout, replay_path=replay,
                      save_steps=save_steps)  # fmt: skip
    print(json.dumps({k: summary[k] for k in ("pairs", "replay", "start", "end")}, indent=2))
    if args.gate_recipe is None and args.gate_set is None:
        return 0
    gate = gate_candidate(
        checkpoint,
        args.out / "checkpoint",
        _recipe(args.gate_recipe) if args.gate_set is None else None,
        args.out,
        args.tolerance,
        args.gate_per_task,
        chat_set=args.gate_set,
    )
    if not gate["passed"]:
        print("error: the candidate regressed; not for promotion:", file=sys.stderr)
        for reason in gate["reasons"]:
            print(f"  {reason}", file=sys.stderr)
        return 3
    print("gate passed: no suite regressed beyond the tolerance" + (
        ", held-out feedback improved" if gate["feedback"]["held_out_pairs"] else ""))  # fmt: skip
    return 0


def main(argv: list[str]) -> int:
    from guardserve.models.hf import transformers_offline
    from guardserve.training.recipe import RecipeError

    if argv[:1] == ["chat-eval"]:  # chat models on a prompt set, model-only and system-level (own parser)
        transformers_offline()
        from guardserve.training.evaluate.chat_eval import main as chat_main

        return chat_main(argv[1:])
    if argv[:1] == ["guards-eval"]:  # `guardserve guards ...`: the guard evaluation parses its own arguments
        from guardserve.training.guards.evaluate.cli import main as guards_main

        return guards_main(argv[1:])
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    transformers_offline()
    try:
        return _dispatch(args)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    command = args.train_command
    if command == "prepare":
        from guardserve.training.prepare import prepare

        prepared = prepare(_recipe(args.recipe), args.out)
        print(json.dumps(prepared.manifest["splits"], indent=2))
        return 0
    if command == "run":
        from guardserve.training.pipeline import run

        recipe = _recipe(args.recipe, args.seed, args.max_steps)
        summary = run(recipe, args.out, resume=args.resume, evaluate=not args.no_eval, progress=not args.no_progress)
        _print_summary(summary)
        return 0
    if command == "eval":
        from guardserve.training.evaluate import evaluate_checkpoint
        from guardserve.training.prepare import load_prepared

        recipe = _recipe(_find_recipe(args.checkpoint, args.recipe))
        data = args.data or args.checkpoint.parent / "data"
        val = load_prepared(data).val if (data / "val.jsonl").is_file() else None
        result = evaluate_checkpoint(args.checkpoint, recipe, val, privacy=not args.no_privacy)
        text = json.dumps(result, indent=2, sort_keys=True)
        if args.out:
            args.out.write_text(text + "\n")
        _print_summary({"eval": result})
        return 0
    if command == "improve":
        return _improve(args)
    if command == "dpo":
        return _dpo_and_gate(args, args.checkpoint, args.pairs, args.replay)
    if command == "export":
        from guardserve.training.export import ExportRefused, export

        recipe = _recipe(args.run / "recipe.yaml")
        eval_file = args.run / "eval.json"
        evaluation = json.loads(eval_file.read_text()) if eval_file.is_file() else None
        try:
            result = export(args.run, args.out, recipe, dtype=args.dtype, force=args.force, evaluation=evaluation)
        except ExportRefused as exc:
            print(f"error: {exc}", file=sys.stderr)
            print("(pass --force to export anyway; the model card will say so)", file=sys.stderr)
            return 3
        forced = " (FORCED below thresholds)" if result["export"]["forced"] else ""
        print(f"exported {args.run / 'checkpoint'} -> {args.out}{forced}")
        return 0
    if command == "search":
        from guardserve.training.search import search

        best = search(_recipe(args.recipe), args.out, trials=args.trials, steps=args.steps)
        print(json.dumps(best, indent=2))
        return 0
    if command == "guards":
        from guardserve.training.guards.train import C_GRID, HeadOptions
        from guardserve.training.guards.train import train as train_guards

        ngrams = (args.ngrams[0], int(args.ngrams[1]), int(args.ngrams[2])) if args.ngrams else ("char_wb", 2, 4)
        extra = None
        if args.extra_ngrams:
            extra = (args.extra_ngrams[0], int(args.extra_ngrams[1]), int(args.extra_ngrams[2]))
        options = HeadOptions(tuple(args.c_grid or C_GRID), args.class_weight, ngrams, extra)
        manifest = train_guards(args.out, encoder_kind=args.encoder, encoder_dir=args.encoder_dir, dev_dir=args.dev,
                                seed=args.seed, features=args.features, tasks=args.task,
                                identity_balance=not args.no_identity_balance, options=options)  # fmt: skip
        print(f"wrote {args.out} (encoder {manifest['encoder']['name']}, features "
              f"{manifest['training']['features_chosen']})")  # fmt: skip
        for task, m in manifest["dev_metrics"].items():
            print(f"  {task}: threshold {m['threshold']:.4g} dev AP {m['average_precision']} "
                  f"precision {m['precision']} recall {m['recall']} FPR {m['fpr']} "
                  f"look-alike FPR {m['lookalike_fpr']}")  # fmt: skip
        if manifest["probe"]["overconfident"]:
            print(f"  WARNING overconfident heads (flag held-out harmless probes): {manifest['probe']['flagged']}")
        return 0
    if command == "guards-encoder":
        from guardserve.training.guards.encoder_export import main as export_main

        return export_main([args.kind, "--out", str(args.out), "--pca-dims", str(args.pca_dims)]
                           + (["--fp32"] if args.fp32 else []))  # fmt: skip
    if command == "canary":
        from guardserve.training.canary_experiment import run_experiment

        result = run_experiment(_recipe(args.recipe), args.out)
        print(json.dumps(result["summary"], indent=2))
        return 0
    raise SystemExit(f"unknown train command {command}")


def _print_summary(summary: dict[str, Any]) -> None:
    if "training" in summary:
        t = summary["training"]
        print(f"trained {t['steps']} steps in {t['seconds']} s ({t['tokens_per_second']} tokens/s), "
              f"best validation loss {t['best_val_loss']}")  # fmt: skip
    if "eval" in summary:
        e = summary["eval"]
        print("exact match:", json.dumps(e["quality"]["exact_match"]))
        print(
            "validation perplexity:", e["quality"]["val_perplexity"], " held-out:", e["quality"]["heldout_perplexity"]
        )
        s = e["safety"]
        print(f"refusal rate {s['refusal_rate']}, over-refusal {s['over_refusal_rate']}, toxicity {s['toxicity_rate']}")
        if "privacy" in e:
            p = e["privacy"]
            print(f"canary exposure: planted {p['planted_mean_bits']} bits, controls {p['control_mean_bits']} bits")
        gate = e["gate"]
        print("gate:", "passed" if gate["passed"] else "FAILED: " + "; ".join(gate["reasons"]))
