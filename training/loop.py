"""The training loop, top to bottom (nanoGPT-style), with accelerate so the same code runs on one CPU here and on
several GPUs with DDP via ``accelerate launch``.

AdamW (weight decay on matrices only), linear warmup then cosine to ``min_lr_ratio``, gradient clipping, bf16
autocast where the hardware has it, loss on assistant tokens only (see :mod:`training.data`), validation every
``eval_every`` steps, early stopping, resumable state every ``checkpoint_every`` steps, and a progress bar with loss,
tokens/s and ETA.

Run directory::

    state/          accelerate state (model, optimizer, scheduler, RNG) + trainer.json (step, best, history)
    checkpoint/     a servable HF directory: the latest evaluated model, or with early stopping the best one
    metrics.jsonl   one line per logged step and per validation
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from guardserve.models.checkpoint import (
    END_OF_TURN,
    PAD_TOKEN,
    llama_config,
    padded_vocab_size,
    save_model,
    write_metadata,
)
from guardserve.models.hf import transformers_offline
from guardserve.training.data import batches, encode_all, pack
from guardserve.training.prepare import Prepared
from guardserve.training.recipe import ModelConfig, Recipe
from guardserve.training.tokenizer import load_tokenizer

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    checkpoint: Path
    steps: int
    best_val_loss: float
    stopped_early: bool
    seconds: float
    tokens_per_second: float
    parameters: int
    mixed_precision: str  # what ran: "no" or "bf16"


def resolve_precision(setting: str) -> str:
    """The recipe's ``mixed_precision``, with ``auto`` decided by the hardware (see :class:`TrainConfig`)."""
    if setting != "auto":
        return setting
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    caps = torch.cpu.get_capabilities()
    return "bf16" if caps.get("avx512_bf16") or caps.get("amx_bf16") else "no"


def build_model(recipe: Recipe, vocab_size: int, pad_id: int, eos_id: int) -> Any:
    transformers = transformers_offline()
    m = recipe.model
    if m.init_from is not None:
        return _pretrained(m, vocab_size)
    config = llama_config(
        vocab_size=vocab_size,
        hidden_size=m.hidden_size,
        num_layers=m.num_layers,
        num_heads=m.num_heads,
        intermediate_size=m.intermediate_size,
        context_length=m.context_length,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        dropout=m.dropout,
    )
    return transformers.LlamaForCausalLM(config)


def _pretrained(m: ModelConfig, vocab_size: int) -> Any:
    """The exported checkpoint ``init_from`` names, in float32, after checking it has the recipe's shape."""
    assert m.init_from is not None
    model = transformers_offline().LlamaForCausalLM.from_pretrained(m.init_from, dtype=torch.float32)
    c = model.config
    have = (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size, c.vocab_size)
    want = (m.hidden_size, m.num_layers, m.num_heads, m.intermediate_size, padded_vocab_size(vocab_size))
    if have != want:
        raise ValueError(
            f"init_from {m.init_from}: shape (hidden, layers, heads, mlp, vocab) = {have}, the recipe says {want}"
        )
    c.attention_dropout = m.dropout
    return model


def lr_lambda(recipe: Recipe) -> Any:
    t = recipe.train

    def factor(step: int) -> float:
        if step < t.warmup_steps:
            return (step + 1) / max(1, t.warmup_steps)
        progress = min(1.0, (step - t.warmup_steps) / max(1, t.max_steps - t.warmup_steps))
        return t.min_lr_ratio + (1 - t.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def train(
    recipe: Recipe,
    prepared: Prepared,
    run_dir: Path,
    *,
    resume: bool = False,
    progress: bool = True,
    on_eval: Any = None,
) -> TrainResult:
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    t = recipe.train
    if t.threads:
        torch.set_num_threads(t.threads)
    precision = resolve_precision(t.mixed_precision)
    log.info("mixed precision: %s (recipe: %s)", precision, t.mixed_precision)
    accelerator = Accelerator(mixed_precision=precision)
    set_seed(recipe.seed)
    tokenizer = load_tokenizer(prepared.tokenizer_dir)
    pad_id, eos_id = tokenizer.token_to_id(PAD_TOKEN), tokenizer.token_to_id(END_OF_TURN)
    train_docs = encode_all(prepared.train, tokenizer)
    val_ids, val_labels = pack(encode_all(prepared.val, tokenizer), t.seq_len, pad_id)

    model = build_model(recipe, tokenizer.get_vocab_size(), pad_id, eos_id)
    parameters = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=t.lr,
        betas=t.betas,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(recipe))
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)

    state_dir, best_dir = run_dir / "state", run_dir / "checkpoint"
    metrics_file = run_dir / "metrics.jsonl"
    trainer: dict[str, Any] = {"step": 0, "best_val_loss": math.inf, "bad_evals": 0, "tokens": 0, "seconds": 0.0}
    if resume and (state_dir / "trainer.json").is_file():
        accelerator.load_state(str(state_dir))
        trainer = json.loads((state_dir / "trainer.json").read_text())
        log.info("resumed at step %d", trainer["step"])
    elif accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        metrics_file.write_text("")

    stream = batches(
        train_docs, t.seq_len, t.batch_size, pad_id, recipe.seed, accelerator.process_index, accelerator.num_processes
    )
    for _ in range(trainer["step"]):  # replay the data order to where we stopped (no compute)
        next(stream)

    def validate(model: Any = model) -> float:
        model.eval()
        losses, weights = [], []
        with torch.no_grad():
            for start in range(0, min(len(val_ids), t.eval_batches * t.batch_size), t.batch_size):
                ids = torch.from_numpy(val_ids[start : start + t.batch_size]).to(accelerator.device)
                labels = torch.from_numpy(val_labels[start : start + t.batch_size]).to(accelerator.device)
                with accelerator.autocast():
                    loss = model(input_ids=ids, labels=labels).loss
                n = int((labels[:, 1:] != -100).sum())
                losses.append(float(loss) * n)
                weights.append(n)
        model.train()
        return sum(losses) / max(1, sum(weights))

    average_file = state_dir / "average.safetensors"
    average: dict[str, torch.Tensor] | None = None
    if resume and average_file.is_file():
        from safetensors.torch import load_file

        average = load_file(str(average_file))

    def log_metrics(entry: dict[str, Any]) -> None:
        if accelerator.is_main_process:
            with metrics_file.open("a") as out:
                out.write(json.dumps(entry) + "\n")

    bar = None
    if progress and accelerator.is_main_process:
        from tqdm import tqdm

        bar = tqdm(total=t.max_steps, initial=trainer["step"], unit="step", dynamic_ncols=True, mininterval=2.0)
    model.train()
    stopped_early = False
    started = time.perf_counter() - trainer["seconds"]
    window_tokens, window_start = 0, time.perf_counter()
    while trainer["step"] < t.max_steps:
        epoch, ids_np, labels_np = next(stream)
        ids = torch.from_numpy(ids_np).to(accelerator.device)
        labels = torch.from_numpy(labels_np).to(accelerator.device)
        with accelerator.autocast():
            loss = model(input_ids=ids, labels=labels).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        trainer["step"] += 1
        step = trainer["step"]
        tokens = ids.numel() * accelerator.num_processes
        trainer["tokens"] += tokens
        window_tokens += tokens
        if step % t.log_every == 0 or step == 1:
            now = time.perf_counter()
            tps = window_tokens / max(1e-9, now - window_start)
            window_tokens, window_start = 0, now
            entry = {"step": step, "epoch": epoch, "loss": round(loss.item(), 4), "lr": scheduler.get_last_lr()[0]}
            entry.update(tokens_per_s=round(tps), elapsed_s=round(now - started, 1))
            log_metrics(entry)
            if bar is not None:
                bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{tps:,.0f}", refresh=False)
        if bar is not None:
            bar.update(1)
        if step % t.eval_every == 0 or step == t.max_steps:
            val_loss = validate()
            improved = val_loss < trainer["best_val_loss"]
            log_metrics({"step": step, "val_loss": round(val_loss, 4), "val_ppl": round(math.exp(val_loss), 3)})
            log.info(
                "step %d: val loss %.4f (ppl %.3f)%s", step, val_loss, math.exp(val_loss), " *" if improved else ""
            )
            if improved:
                trainer["best_val_loss"], trainer["bad_evals"] = val_loss, 0
            else:
                trainer["bad_evals"] += 1
            # With early stopping the checkpoint is the best one by validation loss; without, the latest: skills
            # such as arithmetic appear late and suddenly, long after the validation loss has flattened.
            keep = improved if t.early_stopping_patience else True
            if t.average_from is not None and step >= t.average_from:
                n = trainer.get("averaged", 0)
                average = running_mean(average, accelerator.unwrap_model(model).state_dict(), n)
                trainer["averaged"] = n + 1
                averaged = averaged_copy(accelerator.unwrap_model(model), average)
                avg_loss = validate(averaged)
                log_metrics({"step": step, "avg_val_loss": round(avg_loss, 4), "averaged": n + 1})
                if accelerator.is_main_process:
                    save_checkpoint(averaged, prepared, recipe, best_dir, step, avg_loss)
            elif keep and accelerator.is_main_process:
                save_checkpoint(accelerator.unwrap_model(model), prepared, recipe, best_dir, step, val_loss)
            if on_eval is not None:
                on_eval(step, val_loss)
            if t.early_stopping_patience and trainer["bad_evals"] >= t.early_stopping_patience:
                log.info("early stopping at step %d: no improvement in %d evaluations", step, trainer["bad_evals"])
                stopped_early = True
        if step % t.checkpoint_every == 0 or step == t.max_steps or stopped_early:
            trainer["seconds"] = time.perf_counter() - started
            accelerator.wait_for_everyone()
            accelerator.save_state(str(state_dir))
            if accelerator.is_main_process:
                if average is not None:
                    from safetensors.torch import save_file

                    save_file(average, str(average_file))
                (state_dir / "trainer.json").write_text(json.dumps(trainer, indent=2))
        if stopped_early:
            break
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - started
    trainer["seconds"] = seconds
    return TrainResult(
        checkpoint=best_dir,
        steps=trainer["step"],
        best_val_loss=trainer["best_val_loss"],
        stopped_early=stopped_early,
        seconds=seconds,
        tokens_per_second=trainer["tokens"] / max(1e-9, seconds),
        parameters=parameters,
        mixed_precision=precision,
    )


def running_mean(
    average: dict[str, torch.Tensor] | None, weights: dict[str, torch.Tensor], n: int
) -> dict[str, torch.Tensor]:
    """The mean of ``n`` earlier weight sets (``average``) and ``weights``, in float32, one tensor per name."""
    if average is None or n == 0:
        return {k: v.detach().float().clone() for k, v in weights.items()}
    for k, v in weights.items():
        average[k] += (v.detach().float() - average[k]) / (n + 1)
    return average


def averaged_copy(model: Any, average: dict[str, torch.Tensor]) -> Any:
    import copy

    averaged = copy.deepcopy(model)
    averaged.load_state_dict(average)
    return averaged


def save_checkpoint(model: Any, prepared: Prepared, recipe: Recipe, directory: Path, step: int, val: float) -> None:
    """A servable HF directory, written to a temp folder then swapped in (a crash never leaves half a checkpoint)."""
    work = directory.with_name(directory.name + ".tmp")
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(prepared.tokenizer_dir, work)
    pad_id, eos_id = model.config.pad_token_id, model.config.eos_token_id
    save_model(model, work, eos_token_id=eos_id, pad_token_id=pad_id)
    write_metadata(
        work,
        {
            "trained": True,
            "description": f"{recipe.name}: step {step}, validation loss {val:.4f}",
            "recipe": recipe.name,
            "step": step,
            "val_loss": round(val, 4),
            "parameters": sum(p.numel() for p in model.parameters()),
        },
    )
    work.chmod(0o755)
    if directory.exists():
        shutil.rmtree(directory)
    work.rename(directory)
