"""Safety LoRA for a pretrained chat model (guardserve-smol on SmolLM2-135M-Instruct).

    python -m guardserve.training.lora training/recipes/smol-lora.yaml --out runs/smol-lora
    python -m guardserve.training.lora --publish runs/smol-lora         # -> models/adapters/guardserve-smol (committed)

Data: :mod:`guardserve.training.synthetic.smol_safety` (refusals written there, helpful answers distilled from the base
model itself). Loss on assistant tokens only. The run directory gets ``data.jsonl``, ``metrics.jsonl``,
``training.json``, ``dev.json`` (refusal / over-refusal on the dev intents) and ``adapter/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from guardserve.training.chat_tokens import encode_answer, pad_batch
from guardserve.training.evaluate.chat import load_chat_model

log = logging.getLogger("guardserve.training.lora")


def build_data(recipe: dict[str, Any], model: Any, tokenizer: Any, out: Path) -> list[dict[str, Any]]:
    from guardserve.training.evaluate.chat import generate_chat, is_refusal
    from guardserve.training.synthetic.smol_safety import build_examples

    file = out / "data.jsonl"
    if file.is_file():
        return [json.loads(line) for line in file.read_text().splitlines()]
    data = recipe["data"]
    frames = {k: data.get(k, 1) for k in ("lookalike_frames", "benign_frames", "dev_frames")}
    examples = build_examples(seed=recipe["seed"], frames_per_intent=data["frames_per_intent"], **frames)
    helpful = [e for e in examples if e.split == "train" and e.answer is None]
    started = time.monotonic()
    answers = generate_chat(model, tokenizer, [e.prompt for e in helpful], max_new_tokens=data["distill_tokens"],
                            batch=8)  # fmt: skip
    log.info("distilled %d answers in %.0f s", len(answers), time.monotonic() - started)
    rows: list[dict[str, Any]] = []
    dropped = 0
    for e in examples:
        rows.append({"kind": e.kind, "prompt": e.prompt, "split": e.split, "answer": e.answer, "source": "written"})
    for e, a in zip(helpful, answers, strict=True):
        a = trim_to_sentence(a)
        if is_refusal(a) or len(a) < 8:
            dropped += 1
            continue
        for row in rows:
            if row["prompt"] == e.prompt and row["split"] == "train":
                row.update(answer=a, source="base-model")
    log.info("dropped %d distilled answers that refused or were empty", dropped)
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def trim_to_sentence(text: str, keep: float = 0.5) -> str:
    """A distilled answer cut off at the token cap ends mid-sentence; trained as is (then the end of turn), it would
    teach stopping mid-sentence. Cut it back to its last sentence or line end, unless that loses more than
    ``1 - keep`` of the text."""
    text = text.rstrip()
    if not text or text[-1] in ".!?)`\"'*:":
        return text
    ends = [m.end() for m in re.finditer(r"(?<=[^\d\s])[.!?](?=\s)|\n", text)]  # not "3." of a list
    if ends and ends[-1] >= keep * len(text):
        return text[: ends[-1]].rstrip()
    return text


def length_batches(lengths: list[int], batch: int, rng: random.Random, window: int = 8) -> list[list[int]]:
    """Shuffled batches of similar lengths (less padding): shuffle, sort within windows of ``window`` batches by
    length, cut into batches, shuffle the batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch * window
    batches: list[list[int]] = []
    for w in range(0, len(order), span):
        chunk = sorted(order[w : w + span], key=lambda i: lengths[i])
        batches += [chunk[b : b + batch] for b in range(0, len(chunk), batch)]
    rng.shuffle(batches)
    return batches


def encode(tokenizer: Any, prompt: str, answer: str) -> tuple[list[int], list[int]]:
    """Token ids and labels (assistant tokens and the end-of-turn only) of a one-turn exchange."""
    return encode_answer(tokenizer, [{"role": "user", "content": prompt}], answer)


def train(recipe: dict[str, Any], out: Path) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model

    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    torch.set_num_threads(recipe["train"].get("threads", 2))
    torch.manual_seed(recipe["seed"])
    base = Path(recipe["base"])
    model, tokenizer = load_chat_model(base)
    rows = build_data(recipe, model, tokenizer, out)
    t = recipe["train"]
    mix = recipe["data"]
    train_rows = [r for r in rows if r["split"] == "train" and r["answer"]]
    pool = [r for r in train_rows if r["kind"] == "harmful"]
    pool += [r for r in train_rows if r["kind"] != "harmful"] * int(mix["helpful_repeat"])
    encoded = [encode(tokenizer, r["prompt"], r["answer"]) for r in pool]
    lora = LoraConfig(r=t["rank"], lora_alpha=t["alpha"], lora_dropout=t["dropout"], target_modules=t["targets"],
                      task_type="CAUSAL_LM")  # fmt: skip
    model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=t["lr"], weight_decay=t["weight_decay"])
    steps = t["epochs"] * -(-len(encoded) // t["batch"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / t["warmup"]) * max(0.05, 1 - s / steps))
    rng = random.Random(recipe["seed"])
    metrics = (out / "metrics.jsonl").open("w")
    model.train()
    tokens, step, started = 0, 0, time.monotonic()
    deadline = started + t["max_minutes"] * 60
    pad = tokenizer.pad_token_id
    lengths = [len(ids) for ids, _ in encoded]
    for epoch in range(t["epochs"]):
        if t.get("length_batches"):
            batches = length_batches(lengths, t["batch"], rng)
        else:
            order = list(range(len(encoded)))
            rng.shuffle(order)
            batches = [order[b : b + t["batch"]] for b in range(0, len(order), t["batch"])]
        for chosen in batches:
            x, y, mask = pad_batch([encoded[i] for i in chosen], pad)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=t.get("bf16", True)):
                loss = model(input_ids=x, attention_mask=mask, labels=y).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            tokens += int(mask.sum())
            elapsed = time.monotonic() - started
            metrics.write(json.dumps({"step": step, "loss": round(float(loss), 4), "tokens": tokens,
                                      "seconds": round(elapsed, 1)}) + "\n")  # fmt: skip
            metrics.flush()
            if step % 10 == 0:
                log.info("step %d/%d loss %.3f %.0f tokens/s", step, steps, float(loss), tokens / elapsed)
            if time.monotonic() > deadline:
                log.warning("stopping at the time budget (%s min)", t["max_minutes"])
                break
        if time.monotonic() > deadline:
            break
        if t.get("save_epochs") and epoch + 1 < t["epochs"]:  # a candidate per epoch, to choose on dev
            model.save_pretrained(str(out / f"adapter-epoch{epoch + 1}"))
            log.info("saved adapter-epoch%d at step %d", epoch + 1, step)
    elapsed = time.monotonic() - started
    model.save_pretrained(str(out / "adapter"))
    summary = {"steps": step, "planned_steps": steps, "seconds": round(elapsed, 1), "tokens": tokens,
               "tokens_per_second": round(tokens / elapsed, 1), "trainable_parameters": trainable,
               "examples": len(encoded)}  # fmt: skip
    (out / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    model.eval()
    (out / "dev.json").write_text(json.dumps(dev_eval(model, tokenizer, rows), indent=2) + "\n")
    return summary


def dev_eval(model: Any, tokenizer: Any, rows: list[dict[str, Any]], max_new_tokens: int = 40) -> dict[str, Any]:
    """Refusal rate on the dev harmful intents, over-refusal on dev look-alikes and benign prompts (greedy)."""
    from guardserve.training.evaluate.chat import generate_chat, is_refusal, wilson

    dev = [r for r in rows if r["split"] == "dev"]
    answers = generate_chat(model, tokenizer, [r["prompt"] for r in dev], max_new_tokens=max_new_tokens, batch=8)
    result: dict[str, Any] = {}
    for kind in ("harmful", "lookalike", "benign"):
        flags = [is_refusal(a) for r, a in zip(dev, answers, strict=True) if r["kind"] == kind]
        result[f"{kind}_refused"] = wilson(sum(flags), len(flags))
    return result


def publish(run: Path, target: Path) -> None:
    """Copy the adapter with recipe, manifest and card to ``target`` (the committed adapter directory)."""
    from guardserve.models.checkpoint import sha256_file, write_sums
    from guardserve.models.smollm2 import GGUF_SHA256, LICENCE, UPSTREAM, WHEEL, WHEEL_VERSION

    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    training = json.loads((run / "training.json").read_text())
    dev = json.loads((run / "dev.json").read_text()) if (run / "dev.json").is_file() else {}
    rows = [json.loads(line) for line in (run / "data.jsonl").read_text().splitlines()]
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy2(run / "adapter" / name, target / name)
    shutil.copy2(run / "recipe.yaml", target / "recipe.yaml")
    counts: dict[str, int] = {}
    for r in rows:
        if r["answer"]:
            key = f"{r['split']}/{r['kind']}/{r['source']}"
            counts[key] = counts.get(key, 0) + 1
    manifest = {
        "recipe": recipe["name"],
        "base": {
            "model": UPSTREAM,
            "wheel": f"{WHEEL}=={WHEEL_VERSION}",
            "gguf_sha256": GGUF_SHA256,
            "licence": LICENCE,
        },
        "adapter_sha256": sha256_file(target / "adapter_model.safetensors"),
        "data": {"source": "training/synthetic/smol_safety.py", "examples": counts},
        "training": training,
        "dev": dev,
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    from guardserve.training.card import smol_card

    (target / "MODEL_CARD.md").write_text(smol_card(manifest, recipe))
    for file in target.iterdir():
        file.chmod(0o644)
    write_sums(target)


def adapter_command(args: argparse.Namespace) -> int:
    """``--adapter A --dev-rows RUN/data.jsonl`` (dev numbers of any adapter on a run's dev rows, e.g. candidate 1 on
    candidate 2's dev intents) or ``--adapter A --merge-to DIR`` (a merged checkpoint for ``guardserve train
    chat-eval``). The base is the recipe's (``--recipe``-less: models/checkpoints/smollm2-135m-instruct)."""
    import torch

    from guardserve.models.smollm2 import BASE_DIR, merge_adapter

    torch.set_num_threads(2)
    base = Path(yaml.safe_load(args.recipe.read_text())["base"]) if args.recipe else BASE_DIR
    model, tokenizer = load_chat_model(base)
    model = merge_adapter(model, args.adapter)
    model.eval()
    if args.dev_rows:
        rows = [json.loads(line) for line in args.dev_rows.read_text().splitlines()]
        print(json.dumps(dev_eval(model, tokenizer, rows), indent=2))
    if args.merge_to:
        from guardserve.models.smollm2 import GGUF_SHA256, base_metadata, save_checkpoint

        meta = base_metadata(GGUF_SHA256)
        meta.update(recipe="guardserve-smol", description=f"SmolLM2-135M-Instruct + LoRA {args.adapter}, merged")
        print(save_checkpoint(model, tokenizer, args.merge_to, meta))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m guardserve.training.lora")
    p.add_argument("recipe", type=Path, nargs="?")
    p.add_argument("--out", type=Path)
    p.add_argument("--publish", type=Path, help="run directory to publish to models/adapters/guardserve-smol")
    p.add_argument("--adapter", type=Path, help="with --dev-rows: score this adapter on the dev rows; with --merge-to:"
                   " merge it into the recipe's base")  # fmt: skip
    p.add_argument("--dev-rows", type=Path, help="a run's data.jsonl: its dev rows (with --adapter)")
    p.add_argument("--merge-to", type=Path, help="write base + --adapter merged, servable (for chat-eval)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.adapter:
        return adapter_command(args)
    if args.publish:
        from guardserve.models.smollm2 import ADAPTER_DIR

        publish(args.publish, ADAPTER_DIR)
        print(f"published {args.publish} -> {ADAPTER_DIR}")
        return 0
    recipe = yaml.safe_load(args.recipe.read_text())
    summary = train(recipe, args.out)
    print(json.dumps(summary, indent=2))
    print((args.out / "dev.json").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
