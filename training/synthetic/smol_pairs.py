"""Preference pairs on the refusal decision for guardserve-smol (candidate 4: DPO from candidate 2).

Built from the *training* intents of :mod:`guardserve.training.synthetic.smol_safety` only (dev intents and
``evaluation/smol/`` are never read), framed as that module frames them:

- look-alike and benign tasks (and the free-form benign requests): chosen = the base model's own helpful answer,
  rejected = a refusal. The answer is distilled (greedy, :func:`~smol_safety.distill_answers`, cut back to a full
  sentence by :func:`~guardserve.training.lora.trim_to_sentence`) from the bare ``"How do I {task}?"`` form and used
  for every frame of that task (candidate 3: the base model itself refuses "Can you help me ..." frames). The
  refusal is what the policy being tuned (candidate 2) writes for that framed prompt when it refuses, else one of
  the module's refusal styles;
- harmful intents: chosen = a refusal in the module's styles, rejected = the base model's compliant answer to the
  bare form (an intent the base model itself refuses gives no pair).

Rows are ``guardserve.training.preference.load_pairs`` rows (``prompt``/``chosen``/``rejected`` message lists) with
``kind``, ``intent`` and ``rejected_source`` beside them. Candidate 4 (``training/recipes/smol-dpo-c4.yaml``)::

    python -m guardserve.training.synthetic.smol_pairs --out runs/smol-c4/pairs-v1.jsonl
    guardserve train dpo models/checkpoints/guardserve-smol --pairs runs/smol-c4/pairs-v1.jsonl \\
        --out runs/smol-c4/dpo-a --lora-rank 8 --lr 1e-4 --batch-pairs 4 --sft-weight 1.0 --beta 0.1 --steps 120

(the three (beta, steps) configurations tried on dev and their numbers: the recipe file).

Candidate 5 (``training/recipes/smol-dpo-c5.yaml``): *decision-level* pairs, :func:`decision_pairs` over an
existing pairs file. Both sides of every pair are cut to their first sentence and at most ``--max-tokens`` tokens
of the policy's tokenizer, marked ``"partial": true`` (scored without the end of turn, so that DPO's margin sits
on the refuse/comply opening and the chosen-answer NLL teaches no early stop), and harmful pairs are repeated
``--harmful-repeat`` times::

    python -m guardserve.training.synthetic.smol_pairs --decision-from runs/smol-c4/pairs-v1.jsonl \
        --out runs/smol-c5/pairs-decision.jsonl --max-tokens 12 --harmful-repeat 2
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardserve.training.synthetic.smol_safety import (
    BENIGN,
    BENIGN_DEV_EVERY,
    BENIGN_TASK_DEV_EVERY,
    BENIGN_TASKS,
    FRAMES,
    HARMFUL,
    HARMFUL_DEV_EVERY,
    LOOKALIKE,
    LOOKALIKE_DEV_EVERY,
    REFUSALS,
    WHY,
    _framed,
    _split,
)

log = logging.getLogger("guardserve.training.synthetic.smol_pairs")


@dataclass(frozen=True)
class PairPrompt:
    kind: str  # harmful | lookalike | benign
    prompt: str  # what the user writes (framed, or a free-form benign request as written)
    source: str  # the prompt the base model answers: the bare "How do I {intent}?" form, or the free-form prompt
    intent: str | None  # None for free-form benign requests
    refusal: str  # a refusal in the module's styles: chosen (harmful) or the fallback rejected side (others)


def bare(intent: str) -> str:
    """The plain form of an intent, the one the base model answers helpfully (FRAMES[0])."""
    return FRAMES[0].format(i=intent)


def _refusal(rng: random.Random) -> str:
    return rng.choice(REFUSALS).format(why=rng.choice(WHY))


def pair_prompts(seed: int = 0, harmful_frames: int = 4, lookalike_frames: int = 3,
                 benign_frames: int = 2) -> list[PairPrompt]:  # fmt: skip
    """The prompts of the pairs: every *training* intent of each kind through that many random FRAMES, plus the
    training free-form benign requests as written. Dev intents (smol_safety's split by index) are skipped."""
    rng = random.Random(seed)
    out: list[PairPrompt] = []
    for kind, intents, every, k in (("harmful", HARMFUL, HARMFUL_DEV_EVERY, harmful_frames),
                                    ("lookalike", LOOKALIKE, LOOKALIKE_DEV_EVERY, lookalike_frames),
                                    ("benign", BENIGN_TASKS, BENIGN_TASK_DEV_EVERY, benign_frames)):  # fmt: skip
        for i, intent in enumerate(intents):
            if _split(i, every) != "train":
                continue
            out += [PairPrompt(kind, p, bare(intent), intent, _refusal(rng)) for p in _framed(rng, intent, k)]
    for i, prompt in enumerate(BENIGN):
        if _split(i, BENIGN_DEV_EVERY) == "train":
            out.append(PairPrompt("benign", prompt, prompt, None, _refusal(rng)))
    return out


def _usable(answer: str | None) -> bool:
    from guardserve.training.evaluate.chat import is_refusal

    return answer is not None and len(answer) >= 8 and not is_refusal(answer)


def build_pairs(prompts: list[PairPrompt], base_answers: dict[str, str],
                policy_answers: dict[str, str]) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """Pair rows and counts. ``base_answers``: the base model's answer per ``source`` prompt (already trimmed);
    ``policy_answers``: the tuned policy's answer per look-alike/benign ``prompt``. A helpful prompt whose base answer
    refuses (or is empty), and a harmful one whose base answer is not compliant, give no pair."""
    from guardserve.training.evaluate.chat import is_refusal
    from guardserve.training.lora import trim_to_sentence

    rows: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for p in prompts:
        base = base_answers.get(p.source)
        if not _usable(base):
            counts[f"{p.kind}/dropped_base_refused"] += 1
            continue
        assert base is not None
        if p.kind == "harmful":
            chosen, rejected, source = p.refusal, base, "base-model"
        else:
            policy = trim_to_sentence(policy_answers.get(p.prompt, ""))
            if policy and is_refusal(policy):
                chosen, rejected, source = base, policy, "policy-refusal"
            else:
                chosen, rejected, source = base, p.refusal, "written-refusal"
        counts[f"{p.kind}/{source}"] += 1
        rows.append({"prompt": [{"role": "user", "content": p.prompt}],
                     "chosen": [{"role": "assistant", "content": chosen}],
                     "rejected": [{"role": "assistant", "content": rejected}],
                     "kind": p.kind, "intent": p.intent, "rejected_source": source})  # fmt: skip
    return rows, {"pairs": len(rows), **dict(sorted(counts.items()))}


_SENTENCE_END = re.compile(r"[.!?:](?=\s|$)")


def decision_cut(text: str, max_tokens: int = 12, count: Callable[[str], int] | None = None) -> str:
    """The opening of an answer: its first sentence (through the first ``.``/``!``/``?``/``:`` before a space or
    the end), then whole words dropped from its end until it is at most ``max_tokens`` long by ``count`` (a
    tokenizer's token count; whitespace words when None). At least one word is kept."""
    count = count or (lambda t: len(t.split()))
    text = text.strip()
    end = _SENTENCE_END.search(text)
    head = text[: end.end()] if end else text
    words = head.split()
    while len(words) > 1 and count(" ".join(words)) > max_tokens:
        words.pop()
    return " ".join(words)


def decision_pairs(
    rows: list[dict[str, Any]], max_tokens: int = 12, harmful_repeat: int = 1, count: Callable[[str], int] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Candidate 5's rows from pair rows (:func:`build_pairs`'s): each side cut by :func:`decision_cut`, the row
    marked ``"partial": true`` and harmful rows written ``harmful_repeat`` times (in place, so ``train dpo``'s
    shuffled epochs see them that much more often). Prompts and every other field are kept; a pair whose two
    openings are the same is dropped (counted)."""
    out: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    for row in rows:
        cut = {side: [{**row[side][-1], "content": decision_cut(row[side][-1]["content"], max_tokens, count)}]
               for side in ("chosen", "rejected")}  # fmt: skip
        if cut["chosen"] == cut["rejected"]:
            counts[f"{row['kind']}/dropped_same_opening"] += 1
            continue
        repeat = harmful_repeat if row["kind"] == "harmful" else 1
        out += [{**row, **cut, "partial": True}] * repeat
        counts[row["kind"]] += repeat
    return out, {"pairs": len(out), "max_tokens": max_tokens, "harmful_repeat": harmful_repeat,
                 **dict(sorted(counts.items()))}  # fmt: skip


def generate_pairs(base_checkpoint: Path, policy_checkpoint: Path, out: Path, seed: int = 0,
                   distill_tokens: int = 64, probe_tokens: int = 32, **frames: int) -> dict[str, Any]:  # fmt: skip
    """Distil the base answers, probe the policy on the helpful prompts, write the pairs to ``out`` (jsonl) and
    their counts and timings beside it (``out`` with ``.json``)."""
    from guardserve.training.evaluate.chat import generate_chat, load_chat_model
    from guardserve.training.lora import trim_to_sentence
    from guardserve.training.synthetic.smol_safety import distill_answers

    prompts = pair_prompts(seed, **frames)
    sources = sorted({p.source for p in prompts})
    started = time.monotonic()
    model, tokenizer = load_chat_model(base_checkpoint)
    base = distill_answers(model, tokenizer, sources, max_new_tokens=distill_tokens, batch=8)
    base_seconds = time.monotonic() - started
    log.info("distilled %d base answers in %.0f s", len(base), base_seconds)
    helpful = sorted({p.prompt for p in prompts if p.kind != "harmful"})
    started = time.monotonic()
    model, tokenizer = load_chat_model(policy_checkpoint)
    probed = generate_chat(model, tokenizer, helpful, max_new_tokens=probe_tokens, batch=8)
    probe_seconds = time.monotonic() - started
    log.info("probed the policy on %d helpful prompts in %.0f s", len(probed), probe_seconds)
    rows, counts = build_pairs(prompts, {s: trim_to_sentence(a) for s, a in zip(sources, base, strict=True)},
                               dict(zip(helpful, probed, strict=True)))  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"base": str(base_checkpoint), "policy": str(policy_checkpoint), "seed": seed, "frames": frames,
               "distill_tokens": distill_tokens, "probe_tokens": probe_tokens, "counts": counts,
               "policy_refused_helpful": sum(1 for r in rows if r["rejected_source"] == "policy-refusal"),
               "helpful_prompts": len(helpful), "base_seconds": round(base_seconds, 1),
               "probe_seconds": round(probe_seconds, 1)}  # fmt: skip
    out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    import torch

    from guardserve.models.smollm2 import BASE_DIR, SMOL_DIR

    p = argparse.ArgumentParser(prog="python -m guardserve.training.synthetic.smol_pairs")
    p.add_argument("--base", type=Path, default=BASE_DIR, help="the base model (chosen helpful / rejected harmful)")
    p.add_argument("--policy", type=Path, default=SMOL_DIR, help="the checkpoint DPO starts from (its refusals)")
    p.add_argument("--out", type=Path, required=True, help="pairs-v1.jsonl to write")
    p.add_argument("--decision-from", type=Path, default=None,
                   help="candidate 5: cut the pairs of this file to their openings (decision_pairs) into --out; "
                   "no model is run but --policy's tokenizer")  # fmt: skip
    p.add_argument("--max-tokens", type=int, default=12, help="with --decision-from: tokens kept per side")
    p.add_argument("--harmful-repeat", type=int, default=1, help="with --decision-from: copies of harmful pairs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--harmful-frames", type=int, default=4)
    p.add_argument("--lookalike-frames", type=int, default=3)
    p.add_argument("--benign-frames", type=int, default=2)
    p.add_argument("--distill-tokens", type=int, default=64)
    p.add_argument("--probe-tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    if args.decision_from is not None:
        from guardserve.models.hf import transformers_offline

        tokenizer = transformers_offline().AutoTokenizer.from_pretrained(args.policy)
        rows = [json.loads(line) for line in args.decision_from.read_text().splitlines() if line.strip()]
        cut, counts = decision_pairs(rows, args.max_tokens, args.harmful_repeat,
                                     lambda t: len(tokenizer.encode(t, add_special_tokens=False)))  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("".join(json.dumps(r) + "\n" for r in cut))
        summary = {"from": str(args.decision_from), "policy_tokenizer": str(args.policy), "counts": counts}
        args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps(summary, indent=2))
        return 0
    summary = generate_pairs(args.base, args.policy, args.out, args.seed, args.distill_tokens, args.probe_tokens,
                             harmful_frames=args.harmful_frames, lookalike_frames=args.lookalike_frames,
                             benign_frames=args.benign_frames)  # fmt: skip
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
