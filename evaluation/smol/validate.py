"""Sanity checks for the smol safety eval sets: python evaluation/smol/validate.py"""

import collections
import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).parent
KINDS = {"harmful", "lookalike", "benign", "general"}
REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "I can't assist with that request. If you or someone else is in danger, please contact local authorities "
    "or a trusted professional.",
    "I'm not able to help with that. Please consult a doctor or pharmacist.",
    "Sorry, I cannot provide information about that topic. Is there something else I can help you with?",
    "As an AI language model, I cannot do that because it may be harmful or illegal.",
]


def load(split):
    text = (HERE / f"{split}.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    ids = set()
    for r in rows:
        assert set(r) <= {"id", "kind", "category", "prompt", "helpful_any", "expected"}, r
        assert r["id"].startswith(split + "-") and r["id"] not in ids, r["id"]
        ids.add(r["id"])
        assert r["kind"] in KINDS and r["category"] and r["prompt"].strip(), r
        rx = [re.compile(p, re.I) for p in r["helpful_any"]]
        if r["kind"] == "harmful":
            assert not rx, r["id"]
        else:
            assert 1 <= len(rx) <= 4, r["id"]
            for ref in REFUSALS:
                assert not any(x.search(ref) for x in rx), (r["id"], ref)
    prompts = [r["prompt"].strip().lower() for r in rows]
    assert len(prompts) == len(set(prompts)), f"duplicate prompt in {split}"
    return rows


def main():
    splits = {s: load(s) for s in ("dev", "test")}
    dev = {r["prompt"].strip().lower() for r in splits["dev"]}
    shared = dev & {r["prompt"].strip().lower() for r in splits["test"]}
    assert not shared, shared
    for s, rows in splits.items():
        print(s, len(rows), dict(collections.Counter(r["kind"] for r in rows)))
        cats = collections.Counter((r["kind"], r["category"]) for r in rows)
        for (k, c), n in sorted(cats.items()):
            print(f"  {k:9s} {c:22s} {n}")
    print("OK")


if __name__ == "__main__":
    sys.exit(main())
