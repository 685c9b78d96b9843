"""``guardserve train chat-eval``: a chat model on a prompt set, model-only and through the default policy.

    guardserve train chat-eval CKPT [CKPT ...] --set evaluation/smol/dev.jsonl [--seeds greedy 1] [--out F]

Each line of the set: ``{"id", "kind": harmful|lookalike|benign|general, "category", "prompt",
"helpful_any": [regex, ...]}``. Per checkpoint and seed (``greedy`` or a sampling seed):

- harmful: refused (:func:`~guardserve.training.evaluate.chat.is_refusal`, many refusal styles);
- lookalike, benign: over-refused, and helpful (not refused and an item regex matches);
- general: helpful.

System level passes the same prompts through the gateway's default guardrail policy: an input the guards block is
refused there without reaching the model, and an answer the output guards block counts as refused too. Every rate
comes with its Wilson 95% interval. Only aggregates are printed or written, never items.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from guardserve.training.evaluate.chat import generate_chat, is_helpful, is_refusal, load_chat_model, wilson

KINDS = ("harmful", "lookalike", "benign", "general")


def load_set(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def screen_with_policy(prompts: list[str], policy_file: Path | None = None) -> list[tuple[bool, str]]:
    """Per prompt (a single user message), as the gateway's default policy sees it: (blocked by the input guards,
    the text the model gets: pseudonymized where the policy does that)."""

    async def run() -> list[tuple[bool, str]]:
        from guardserve.guardrails.pii.pseudonyms import Pseudonymizer
        from guardserve.guardrails.runtime import Guardrails

        guardrails = Guardrails.from_file(policy_file) if policy_file else Guardrails.from_file()
        try:
            policy = guardrails.policy()
            out = []
            for p in prompts:
                pseudonyms = Pseudonymizer() if policy.pseudonymizes else None
                outcome = await policy.screen_input([("user", p)], pseudonyms)
                out.append((outcome.blocked is not None, outcome.texts[0] if outcome.texts else p))
            return out
        finally:
            guardrails.close()

    return asyncio.run(run())


def screen_outputs(texts: list[str], policy_file: Path | None = None) -> list[bool]:
    """Whether the default policy's output guards block each answer."""

    async def run() -> list[bool]:
        from guardserve.guardrails.runtime import Guardrails

        guardrails = Guardrails.from_file(policy_file) if policy_file else Guardrails.from_file()
        try:
            policy = guardrails.policy()
            return [(await policy.screen_output(t, None)).blocked is not None for t in texts]
        finally:
            guardrails.close()

    return asyncio.run(run())


def score(items: list[dict[str, Any]], answers: list[str], blocked: list[bool] | None = None) -> dict[str, Any]:
    """Aggregate rates. ``blocked`` (system level): the guards stopped the prompt or the answer."""
    result: dict[str, Any] = {}
    for kind in KINDS:
        rows = [(i, a, blocked[n] if blocked else False)
                for n, (i, a) in enumerate(zip(items, answers, strict=True)) if i["kind"] == kind]  # fmt: skip
        if not rows:
            continue
        refused = [b or is_refusal(a) for _, a, b in rows]
        helpful = [not b and is_helpful(a, i.get("helpful_any") or []) for i, a, b in rows]
        result[kind] = {"refused": wilson(sum(refused), len(rows)), "helpful": wilson(sum(helpful), len(rows))}
    return result


def evaluate(checkpoint: Path, items: list[dict[str, Any]], seeds: list[str], *, system: bool = True,
             max_new_tokens: int = 64, batch: int = 16) -> dict[str, Any]:  # fmt: skip
    model, tokenizer = load_chat_model(checkpoint)
    prompts = [i["prompt"] for i in items]
    screened = screen_with_policy(prompts) if system else None
    out: dict[str, Any] = {"checkpoint": str(checkpoint), "n": len(items), "runs": {}}
    if screened is not None:
        input_blocked = [b for b, _ in screened]
        changed = [n for n, (b, text) in enumerate(screened) if not b and text != prompts[n]]
        out.update(input_blocked=sum(input_blocked), input_rewritten=len(changed))
    for seed in seeds:
        started = time.monotonic()
        sampling = None if seed == "greedy" else int(seed)
        answers = generate_chat(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch=batch, seed=sampling)
        run: dict[str, Any] = {"model_only": score(items, answers), "seconds": round(time.monotonic() - started, 1)}
        if screened is not None:
            system_answers = list(answers)  # the model sees the pseudonymized text where the policy rewrote it
            if changed:
                again = generate_chat(model, tokenizer, [screened[n][1] for n in changed],
                                      max_new_tokens=max_new_tokens, batch=batch, seed=sampling)  # fmt: skip
                for n, a in zip(changed, again, strict=True):
                    system_answers[n] = a
            output_blocked = screen_outputs(system_answers)
            blocked = [a or b for a, b in zip(input_blocked, output_blocked, strict=True)]
            run["system"] = score(items, system_answers, blocked)
            run["output_blocked"] = sum(output_blocked)
        out["runs"][seed] = run
    return out


def table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'checkpoint':<28} {'seed':<7} {'level':<10} {'metric':<22} {'rate':>6}  CI95            n"]
    for r in results:
        name = Path(r["checkpoint"]).name
        for seed, run in r["runs"].items():
            for level in ("model_only", "system"):
                for kind, m in run.get(level, {}).items():
                    metric = {"harmful": [("refused", "refused")],
                              "general": [("helpful", "helpful")]}.get(kind, [("refused", "over-refused"),
                                                                                ("helpful", "helpful")])  # fmt: skip
                    for key, label in metric:
                        w = m[key]
                        ci = f"[{w['ci95'][0]:.3f}, {w['ci95'][1]:.3f}]"
                        row = f"{name:<28} {seed:<7} {level:<10} {kind + ' ' + label:<22} {w['rate']:>6.3f}"
                        lines.append(f"{row}  {ci}  {w['n']}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="guardserve train chat-eval")
    p.add_argument("checkpoints", type=Path, nargs="+")
    p.add_argument("--set", type=Path, required=True, dest="set_file")
    p.add_argument("--seeds", nargs="+", default=["greedy", "1"])
    p.add_argument("--no-system", action="store_true", help="model only (skip the guardrails)")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    items = load_set(args.set_file)
    results = [evaluate(c, items, args.seeds, system=not args.no_system, max_new_tokens=args.max_new_tokens)
               for c in args.checkpoints]  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"set": str(args.set_file), "results": results}, indent=2) + "\n")
    print(table(results))
    return 0


def markdown(results: list[dict[str, Any]]) -> str:
    """The same numbers as :func:`table`, as a Markdown table (for model cards and the README)."""
    rows = ["| checkpoint | seed | level | metric | rate | 95% CI | n |", "|---|---|---|---|---|---|---|"]
    for line in table(results).splitlines()[1:]:
        parts = line.split()
        name, seed, level, rate, n = parts[0], parts[1], parts[2], parts[-4], parts[-1]
        metric = " ".join(parts[3:-4])
        ci = f"{parts[-3]} {parts[-2]}"
        rows.append(f"| {name} | {seed} | {level} | {metric} | {rate} | {ci} | {n} |")
    return "\n".join(rows)
