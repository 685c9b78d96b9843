"""What scoping the NER model to name sentences (``guardrails.pii.name_scope``) changes: findings, PII figures and
the characters the model reads, against running it over whole texts.

    .venv/bin/python loadtests/bench_ner_scope.py [--split dev|test] [--scope name_sentences|cased_text]
                                                [--texts FILE.jsonl ...] [--json OUT]

For each evaluation set of ``evaluation/guards`` (the PII set with gold spans; the others as plain text of other
kinds: prompts, injections, toxic and harmless messages), and each ``--texts`` file (JSON lines with a "text", e.g.
model answers from ``loadtests/model_answers.py``), ``--scope`` and whole-text NER analyse every text with the
default policy's input PII configuration (scope aside). Printed per set: the share of NER characters left, texts
whose findings differ, and for the PII set recall / precision / hard-negative flagged rate / fully-masked rate with
Wilson intervals. Choices are made on ``dev``; ``test`` is run once per candidate scope.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT.parent) not in sys.path:
    sys.path.insert(0, str(ROOT.parent))

from guardserve.guardrails.pii.config import PIIConfig  # noqa: E402
from guardserve.guardrails.pii.engine import PIIEngine  # noqa: E402
from guardserve.guardrails.pii.name_scope import NER_SCOPES  # noqa: E402
from guardserve.guardrails.types import Action  # noqa: E402
from guardserve.training.guards.evaluate.metrics import Rate  # noqa: E402
from guardserve.training.guards.evaluate.pii_eval import PIIText, pii_figures  # noqa: E402
from guardserve.training.guards.evaluate.sets import read_jsonl  # noqa: E402

SETS = ROOT / "evaluation" / "guards"
PLAIN = ("prompt_injection", "toxicity", "harmful_request", "identity")
BATCH = 32


def analyse(engine: PIIEngine, texts: list[str]) -> tuple[list[list[Any]], int, float]:
    """Findings per text, NER characters read, CPU seconds (batches of :data:`BATCH`, as the gateway batches)."""
    nlp = engine.nlp.engine
    before, start = nlp.chars_processed, time.process_time()
    out: list[list[Any]] = []
    for at in range(0, len(texts), BATCH):
        out.extend(engine.analyze_batch(texts[at : at + BATCH]))
    return out, nlp.chars_processed - before, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", default="dev", choices=("dev", "test"))
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--examples", type=int, default=5, help="differing texts to show per set")
    parser.add_argument("--scope", default="name_sentences", choices=[s for s in NER_SCOPES if s != "whole_text"])
    parser.add_argument("--texts", type=Path, nargs="*", default=[], help="more sets: JSON lines with a 'text'")
    parser.add_argument("--only-texts", action="store_true", help="only the --texts sets")
    args = parser.parse_args()
    scopes = ("whole_text", args.scope)
    engines = {scope: PIIEngine(PIIConfig(ner_scope=scope)) for scope in scopes}
    report: dict[str, Any] = {"split": args.split, "scope": args.scope, "sets": {}}
    pii_rows = [PIIText.from_row(r) for r in read_jsonl(SETS / f"pii.{args.split}.jsonl")]
    sets: dict[str, list[str]] = {}
    if not args.only_texts:
        sets["pii"] = [r.text for r in pii_rows]
        for name in PLAIN:
            path = SETS / f"{name}.{args.split}.jsonl"
            if path.exists():
                sets[name] = [str(r["text"]) for r in read_jsonl(path)]
    for path in args.texts:
        sets[path.stem] = [str(r["text"]) for r in read_jsonl(path)]
    for name, texts in sets.items():
        results = {scope: analyse(engine, texts) for scope, engine in engines.items()}
        whole, scoped = results["whole_text"][0], results[args.scope][0]
        differ = [i for i, (a, b) in enumerate(zip(whole, scoped, strict=True)) if a != b]
        entry: dict[str, Any] = {
            "texts": len(texts),
            "chars": sum(len(t) for t in texts),
            "ner_chars": {scope: r[1] for scope, r in results.items()},
            "cpu_ms_per_text": {scope: 1000 * r[2] / max(1, len(texts)) for scope, r in results.items()},
            "findings_differ": Rate(len(differ), len(texts)).to_dict(),
            "examples_differ": [  # the texts only on dev: test misses are never looked at
                {
                    **({"text": texts[i]} if args.split == "dev" else {}),
                    "whole_text": [(f.entity_type, f.start, f.end) for f in whole[i]],
                    args.scope: [(f.entity_type, f.start, f.end) for f in scoped[i]],
                }
                for i in differ[: args.examples]
            ],
        }
        if name == "pii":
            entry["figures"] = {}
            for scope, (found, _, _) in results.items():
                masked = [
                    engines[scope].transform(r.text, f, Action.MASK) for r, f in zip(pii_rows, found, strict=True)
                ]
                entry["figures"][scope] = pii_figures(pii_rows, found, masked)
        report["sets"][name] = entry
        print_set(name, entry, args.scope)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def _rate(r: dict[str, Any]) -> str:
    if r["rate"] is None:
        return "n/a"
    low, high = r["ci95"]
    return f"{r['rate']:.3f} [{low:.3f}, {high:.3f}] (n={r['n']})"


def print_set(name: str, entry: dict[str, Any], scope: str) -> None:
    kept = entry["ner_chars"][scope] / max(1, entry["ner_chars"]["whole_text"])
    cpu = entry["cpu_ms_per_text"]
    print(f"\n{name}: {entry['texts']} texts, {entry['chars']} chars")
    print(f"  NER chars kept: {kept:.3f}; CPU ms/text whole {cpu['whole_text']:.2f}, {scope} {cpu[scope]:.2f}")
    print(f"  texts whose findings differ: {_rate(entry['findings_differ'])}")
    for example in entry["examples_differ"]:
        print(f"    {example}")
    for scope, figures in entry.get("figures", {}).items():
        people = {
            e: _rate(figures["per_entity"][e]["recall"]) for e in ("PERSON", "LOCATION") if e in figures["per_entity"]
        }
        print(
            f"  {scope:15} recall {_rate(figures['recall'])}  precision {_rate(figures['precision'])}  "
            f"hard-neg flagged {_rate(figures['hard_negative_flagged'])}  fully masked {_rate(figures['fully_masked'])}"
        )
        print(f"  {'':15} {people}")


if __name__ == "__main__":
    main()
