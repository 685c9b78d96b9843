"""``guardserve guards eval``: every guard of the gateway on the evaluation sets -> report.md, report.json, PNGs.

    guardserve guards eval [--sets evaluation/guards] [--split test|dev] [--out runs/guards-eval] [--limit N]
                           [--floors FILE] [--skip-distortion] [--policies FILE] [--model NAME]
                           [--only pii|classifiers|distortion]

Dispatched lazily from :mod:`app.cli` (the gateway never imports ``training`` at import time). Exit status: 0, or
1 when a floor of ``--floors`` is missed (the violations are listed), 2 on bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SETS = Path("evaluation/guards")
OUT = Path("runs/guards-eval")


def parser() -> argparse.ArgumentParser:
    guards = argparse.ArgumentParser(prog="guardserve guards", description="the gateway's guards, measured")
    sub = guards.add_subparsers(dest="guards_command", required=True)
    e = sub.add_parser("eval", help="evaluate every guard on the evaluation sets (Markdown + JSON + PNG)")
    e.add_argument("--sets", type=Path, default=SETS, help=f"evaluation set directory (default {SETS})")
    e.add_argument("--split", choices=["test", "dev"], default="test")
    e.add_argument("--out", type=Path, default=OUT, help=f"report directory (default {OUT})")
    e.add_argument("--limit", type=int, help="at most N items per set (a seeded sample: quick runs)")
    e.add_argument("--floors", type=Path, help="YAML of metric path -> {min: X} / {max: X}; exit 1 when one is missed")
    e.add_argument("--skip-distortion", action="store_true", help="skip the answer-distortion run (needs torch)")
    e.add_argument("--policies", type=Path, help="guardrails policy file (default: the gateway's)")
    e.add_argument("--model", help="registry model that answers for the distortion figure (default: the first)")
    e.add_argument("--max-tokens", type=int, default=64, help="answer length for the distortion figure")
    e.add_argument(
        "--only",
        choices=["pii", "classifiers", "distortion"],
        help="only this part (classifiers: with fairness; quick runs)",
    )
    e.add_argument("--baseline-threshold", type=float, default=0.5, help="raw alt-profanity-check's threshold")
    return guards


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from guardserve.training.guards.evaluate.report import check_floors, load_floors, write_report

    try:
        floors = load_floors(args.floors) if args.floors else None
    except (OSError, ValueError) as exc:
        print(f"error: floors: {exc}", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    try:
        report, curves = evaluate(args)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    violations: list[str] = []
    if floors is not None:
        violations = check_floors(report, floors)
        report["floors"] = {"file": str(args.floors), "checked": len(floors), "violations": violations}
    written = write_report(report, curves, args.out)
    print(f"guard evaluation written: {', '.join(str(p) for p in written)}")
    if violations:
        print(f"{len(violations)} of {len(floors or [])} floors missed:", file=sys.stderr)
        for line in violations:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


def evaluate(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, tuple[list[float], list[float]]]]:
    """Build the gateway's guardrails once and run every part; the report as a dict, and the ROC curves."""
    from guardserve.guardrails.policy import DEFAULT_POLICY_FILE
    from guardserve.guardrails.runtime import Guardrails

    policies = args.policies or DEFAULT_POLICY_FILE
    guardrails = Guardrails.from_file(policies, workers=2)
    try:
        return asyncio.run(_evaluate(args, guardrails, Path(policies)))
    finally:
        guardrails.close()


async def _evaluate(
    args: argparse.Namespace, guardrails: Any, policies: Path
) -> tuple[dict[str, Any], dict[str, tuple[list[float], list[float]]]]:
    from guardserve.models.checkpoint import sha256_file
    from guardserve.training.guards.evaluate.classifiers_eval import CATEGORIES, Labelled, evaluate_category
    from guardserve.training.guards.evaluate.fairness import IdentityText, evaluate_fairness
    from guardserve.training.guards.evaluate.pii_eval import PIIText, evaluate_pii
    from guardserve.training.guards.evaluate.sets import read_jsonl, set_path

    files: dict[str, dict[str, Any]] = {}

    def rows(name: str, split: str | None) -> list[dict[str, Any]] | None:
        path = set_path(args.sets, name, split)
        if not path.is_file():
            log.warning("no %s: that part is reported as not available", path)
            return None
        data = read_jsonl(path, args.limit)
        files[path.name] = {"items": len(data), "sha256": sha256_file(path)}
        return data

    report: dict[str, Any] = {
        "meta": {
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "sets": str(args.sets),
            "split": args.split,
            "limit": args.limit,
            "policy": str(policies),
            "default_policy": guardrails.default_name,
            "guardrails": guardrails.info(),
            "files": files,
        },
        "classifiers": {},
    }
    curves: dict[str, tuple[list[float], list[float]]] = {}
    only = getattr(args, "only", None)
    for category in CATEGORIES if only in (None, "classifiers") else ():
        data = rows(category, args.split)
        log.info("classifier guard %s", category)
        labelled = None if data is None else [Labelled.from_row(r) for r in data]
        result = await evaluate_category(guardrails, category, labelled)
        report["classifiers"][category] = result.figures
        if result.curve is not None and result.curve[0]:
            curves[category] = result.curve

    log.info("fairness")
    if only not in (None, "classifiers"):
        report["fairness"] = {"available": False, "reason": f"skipped (--only {only})"}
    elif identity := rows("identity", args.split):
        texts = [IdentityText.from_row(r) for r in identity]
        report["fairness"] = await evaluate_fairness(guardrails, texts, args.baseline_threshold)
    else:
        report["fairness"] = {"available": False, "reason": "no identity set"}

    pii = rows("pii", args.split) if only in (None, "pii") else None
    log.info("PII")
    if pii:
        report["pii"] = await evaluate_pii(guardrails, [PIIText.from_row(r) for r in pii])
    else:
        report["pii"] = {"available": False, "reason": "no PII set"}

    report["distortion"] = (
        await _distortion(args, guardrails, rows)
        if only in (None, "distortion")
        else {"available": False, "reason": f"skipped (--only {only})"}
    )
    return report, curves


async def _distortion(args: argparse.Namespace, guardrails: Any, rows: Any) -> dict[str, Any]:
    if args.skip_distortion:
        return {"available": False, "reason": "skipped (--skip-distortion)"}
    # the test split is harmless_prompts.jsonl (it came first); dev is harmless_prompts.dev.jsonl, written apart
    prompts = rows("harmless_prompts", "dev" if args.split == "dev" else None)
    if not prompts:
        return {"available": False, "reason": "no harmless prompt set"}
    from guardserve.training.guards.evaluate.distortion import (
        HarmlessPrompt,
        cpu_generator,
        default_model,
        evaluate_distortion,
    )

    name, checkpoint = default_model(name=args.model)
    log.info("answer distortion with %s", name)
    records = [HarmlessPrompt.from_row(r) for r in prompts]
    return await evaluate_distortion(guardrails, records, cpu_generator(checkpoint, args.max_tokens), model=name)
