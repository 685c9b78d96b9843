"""Direct Preference Optimization (Rafailov et al. 2023) on the gateway's preference pairs.

The feedback export writes ``DIR/preference/pairs-v1.jsonl``: ``{"prompt": [messages], "chosen": [assistant
message], "rejected": [assistant message], ...}`` (a user's ``preferred`` answer against the served one, or a
better-rated answer against a worse-rated one to the same prompt). For a pair, with the policy being trained
(π) and a frozen copy of the model it started from (the reference, π_ref), the loss is

    -log σ( β · [ (log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x)) ] )

where log π(y|x) is the summed log-probability of the answer's tokens (and its end of turn) after the prompt.
This is TRL's ``DPOTrainer`` default (``loss_type="sigmoid"``); TRL itself is not used: it needs ``datasets``,
``pandas`` and ``pyarrow`` beside our pinned torch and transformers, for a loss of a few lines. ``tests/training/
test_preference.py`` checks the loss on a worked example, its gradient against the closed form, and that a few
steps on a real checkpoint raise the chosen answer's margin while the reference stays as it was.

``guardserve train dpo CHECKPOINT --pairs EXPORT/preference --out RUN`` runs it on a whole checkpoint
(:func:`run_dpo`); with ``--replay EXPORT/sft`` the rated-up answers are rehearsed beside the pairs (an NLL term,
``--replay-weight``); with ``--gate-recipe`` the candidate must not regress against it (:func:`gate_candidate`,
exit 3). Not here yet (issue 15): LoRA on the smol model.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardserve.training.chat_tokens import IGNORE, encode_answer, pad_batch


@dataclass(frozen=True)
class PreferencePair:
    prompt: tuple[dict[str, str], ...]  # the conversation up to the answer (system/user/assistant messages)
    chosen: str
    rejected: str
    # the answers are openings of longer ones (a row's ``"partial": true``): scored without the end of turn, so that
    # the margin sits on the opening and nothing teaches the policy to stop there
    partial: bool = False


@dataclass(frozen=True)
class Demonstration:
    """A rated-up answer (an export's ``sft`` row): replayed with a likelihood term so that what users liked stays."""

    prompt: tuple[dict[str, str], ...]
    answer: str


def load_pairs(path: Path) -> list[PreferencePair]:
    """The pairs of an export's ``preference/pairs-v1.jsonl`` (a file, or a folder searched for ``*.jsonl``);
    rows without a prompt, a chosen and a rejected assistant answer that differ are skipped. A row with
    ``"partial": true`` gives a partial pair (answers scored without their end of turn)."""
    pairs: list[PreferencePair] = []
    for row in _jsonl_rows(path):
        prompt = _messages(row.get("prompt"))
        chosen, rejected = _answer(row.get("chosen")), _answer(row.get("rejected"))
        if prompt and chosen is not None and rejected is not None and chosen != rejected:
            pairs.append(PreferencePair(prompt, chosen, rejected, row.get("partial") is True))
    return pairs


def load_demonstrations(path: Path, ratings: Sequence[str] = ("up",)) -> list[Demonstration]:
    """The rated dialogues of an export's ``sft/feedback-v1.jsonl`` (a file, or a folder searched for ``*.jsonl``)
    whose ``rating`` is in ``ratings``, each once; rows without a prompt and an assistant answer are skipped."""
    seen: set[str] = set()
    found: list[Demonstration] = []
    for row in _jsonl_rows(path):
        if not isinstance(row, dict) or row.get("rating") not in ratings:
            continue
        messages = row.get("messages")
        prompt, answer = _messages(messages[:-1] if isinstance(messages, list) else None), _answer(messages)
        key = json.dumps([prompt, answer])
        if prompt and answer is not None and key not in seen:
            seen.add(key)
            found.append(Demonstration(prompt, answer))
    return found


def _jsonl_files(path: Path) -> list[Path]:
    return sorted(path.glob("**/*.jsonl")) if path.is_dir() else [path]


def _jsonl_rows(path: Path) -> Iterator[Any]:
    for file in _jsonl_files(path):
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)


def _messages(raw: Any) -> tuple[dict[str, str], ...]:
    """The role/content messages of a row's message list (entries without text content dropped)."""
    return tuple(
        {"role": str(m["role"]), "content": str(m["content"])}
        for m in raw or ()
        if isinstance(m, dict) and isinstance(m.get("content"), str)
    )


def _prompt_key(prompt: Sequence[dict[str, str]]) -> str:
    return json.dumps(prompt, sort_keys=True)


def _answer(messages: Any) -> str | None:
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        content = messages[-1].get("content")
        if messages[-1].get("role") == "assistant" and isinstance(content, str) and content.strip():
            return content
    return None


def sequence_logps(model: Any, ids: Any, labels: Any, mask: Any) -> Any:
    """Per row, the summed log-probability of the labelled tokens (each predicted from the tokens before it)."""
    return _token_logps(model, ids, labels, mask)[0].sum(-1)


def _token_logps(model: Any, ids: Any, labels: Any, mask: Any) -> tuple[Any, Any]:
    """Per token, the log-probability of each labelled token (0 elsewhere), and which tokens are labelled."""
    import torch

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    targets = labels[:, 1:]
    keep = targets != IGNORE
    picked = torch.gather(logits.log_softmax(-1), 2, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked * keep, keep


def pair_margin(model: Any, tokenizer: Any, pair: PreferencePair) -> float:
    """log π(chosen | prompt) − log π(rejected | prompt) under ``model``: how much it prefers the chosen answer."""
    import torch

    rows = [encode_answer(tokenizer, pair.prompt, a, not pair.partial) for a in (pair.chosen, pair.rejected)]
    with torch.no_grad():
        logps = sequence_logps(model, *pad_batch(rows, tokenizer.pad_token_id or 0))
    return float(logps[0] - logps[1])


def dpo_loss(
    policy_chosen: Any, policy_rejected: Any, reference_chosen: Any, reference_rejected: Any, beta: float
) -> tuple[Any, Any, Any]:
    """The sigmoid DPO loss (mean over the batch) and the implicit rewards β·(log π − log π_ref) of each side."""
    import torch.nn.functional as F

    chosen_rewards = beta * (policy_chosen - reference_chosen)
    rejected_rewards = beta * (policy_rejected - reference_rejected)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


@dataclass(frozen=True)
class DPOConfig:
    beta: float = 0.1
    lr: float = 5e-5
    steps: int = 50
    batch_pairs: int = 4
    seed: int = 0
    # + this weight x the chosen answers' mean token NLL (TRL's rpo_alpha): DPO alone only moves the margin, this
    # also makes the chosen answer the one greedy decoding writes
    sft_weight: float = 0.0
    # + this weight x the token NLL of a batch of rated-up answers (an export's sft rows) each step: rehearsal of
    # what users liked, so that fixing the rated-down class does not unlearn the rest (refusals, skills)
    replay_weight: float = 0.0
    # > 0: train a LoRA adapter of this rank on every linear projection (alpha = 2 x rank) and merge it into the
    # saved checkpoint (the served model stays one plain checkpoint); 0: the whole model
    lora_rank: int = 0


def train_dpo(
    policy: Any,
    reference: Any,
    tokenizer: Any,
    pairs: Sequence[PreferencePair],
    config: DPOConfig,
    demonstrations: Sequence[Demonstration] = (),
    on_step: Callable[[int, list[dict[str, float]]], None] | None = None,
) -> list[dict[str, float]]:
    """Optimise ``policy`` (in place; only its parameters that require grad, e.g. a LoRA adapter's) on ``pairs``
    against the frozen ``reference``, plus ``config.replay_weight`` x the NLL of ``demonstrations`` (a batch of
    them per step, in the same forward pass). Returns one row per step: loss, mean reward margin, reward accuracy
    (and ``replay_nll`` when replaying). ``on_step(step, history)``: called after each step (1-based)."""
    import torch

    if not pairs:
        raise ValueError("no preference pairs to train on")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [
        (
            encode_answer(tokenizer, p.prompt, p.chosen, not p.partial),
            encode_answer(tokenizer, p.prompt, p.rejected, not p.partial),
        )
        for p in pairs
    ]
    reference.eval()
    for parameter in reference.parameters():
        parameter.requires_grad_(False)
    trainable = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    replay = [encode_answer(tokenizer, d.prompt, d.answer) for d in demonstrations] if config.replay_weight else []
    order = _cycle(len(encoded), config.seed)
    replay_order = _cycle(len(replay), config.seed + 1) if replay else iter(())
    history: list[dict[str, float]] = []
    policy.train()
    for step in range(1, config.steps + 1):
        batch = [encoded[next(order)] for _ in range(min(config.batch_pairs, len(encoded)))]
        rehearse = [replay[next(replay_order)] for _ in range(min(config.batch_pairs, len(replay)))]
        n = len(batch)
        ids, labels, mask = pad_batch([c for c, _ in batch] + [r for _, r in batch] + rehearse, pad_id)
        with torch.no_grad():
            ref = sequence_logps(reference, ids[: 2 * n], labels[: 2 * n], mask[: 2 * n])
        tokens, keep = _token_logps(policy, ids, labels, mask)
        pol = tokens[: 2 * n].sum(-1)
        loss, chosen, rejected = dpo_loss(pol[:n], pol[n : 2 * n], ref[:n], ref[n:], config.beta)
        if config.sft_weight:
            loss = loss - config.sft_weight * tokens[:n].sum() / keep[:n].sum()
        replay_nll = -tokens[2 * n :].sum() / keep[2 * n :].sum() if rehearse else None
        if replay_nll is not None:
            loss = loss + config.replay_weight * replay_nll
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        margin = chosen - rejected
        history.append(
            {
                "loss": float(loss.detach()),
                "margin": float(margin.mean()),
                "accuracy": float((margin > 0).float().mean()),
                **({"replay_nll": float(replay_nll.detach())} if replay_nll is not None else {}),
            }
        )
        if on_step is not None:
            on_step(step, history)
            policy.train()
    policy.eval()
    return history


def _cycle(n: int, seed: int) -> Iterator[int]:
    rng = random.Random(seed)
    while True:
        order = list(range(n))
        rng.shuffle(order)
        yield from order


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def split_pairs(
    pairs: Sequence[PreferencePair], holdout: float, seed: int
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, held out): a seeded ``holdout`` fraction of the prompts (all pairs of a prompt on one side)."""
    prompts = sorted({_prompt_key(p.prompt) for p in pairs})
    random.Random(seed).shuffle(prompts)
    held = set(prompts[: round(len(prompts) * holdout)])
    inside = [_prompt_key(p.prompt) in held for p in pairs]
    return [p for p, h in zip(pairs, inside, strict=True) if not h], [
        p for p, h in zip(pairs, inside, strict=True) if h
    ]


def run_dpo(
    checkpoint: Path,
    pairs_path: Path,
    out: Path,
    config: DPOConfig,
    holdout: float = 0.0,
    replay_path: Path | None = None,
    save_steps: Sequence[int] = (),
) -> dict[str, Any]:
    """Fine-tune a whole checkpoint with DPO from itself (policy and reference both start as ``checkpoint``) and
    write a servable checkpoint to ``out/checkpoint`` and ``out/dpo.json`` (what it trained on: the pairs' and the
    replayed answers' files with their sha256 and counts, the settings, the loss and reward margin at the start and
    the end). ``holdout``: a fraction of the prompts kept out of training, for :func:`gate_candidate`'s feedback
    check (``out/heldout.jsonl``); replayed answers to those prompts are left out too. ``replay_path``: an export's
    ``sft`` folder, whose rated-up answers are replayed (``config.replay_weight``). ``save_steps``: also write the
    (merged) model after each of these steps (< ``config.steps``) to ``out/checkpoint-STEP``, same format. With
    ``config.lora_rank`` the adapter is also written on its own beside each checkpoint (``out/adapter[-STEP]``,
    peft's format; its base is ``checkpoint``)."""
    import copy

    import torch

    from guardserve.models.checkpoint import METADATA_FILE, write_metadata
    from guardserve.models.hf import transformers_offline

    pairs, held = split_pairs(load_pairs(pairs_path), holdout, config.seed)
    held_prompts = {_prompt_key(p.prompt) for p in held}
    replay = [
        d
        for d in (load_demonstrations(replay_path) if replay_path is not None else [])
        if _prompt_key(d.prompt) not in held_prompts
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "heldout.jsonl").write_text("".join(json.dumps(dataclasses.asdict(p)) + "\n" for p in held))
    transformers = transformers_offline()
    torch.manual_seed(config.seed)
    policy = transformers.AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    reference = transformers.AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    if config.lora_rank:
        from peft import LoraConfig, get_peft_model

        adapter = LoraConfig(r=config.lora_rank, lora_alpha=2 * config.lora_rank, lora_dropout=0.0,
                             target_modules=list(LORA_TARGETS), task_type="CAUSAL_LM")  # fmt: skip
        policy = get_peft_model(policy, adapter)
    source = checkpoint / METADATA_FILE
    metadata = json.loads(source.read_text()) if source.is_file() else {}

    def summarise(history: list[dict[str, float]]) -> dict[str, Any]:
        return {
            "init_from": str(checkpoint),
            "pairs": {"files": _digests(pairs_path), "count": len(pairs), "held_out": len(held)},
            "replay": {"files": _digests(replay_path), "count": len(replay)} if replay_path is not None else None,
            "config": dataclasses.asdict(config),
            "start": history[0],
            "end": history[-1],
        }

    def save(model: Any, target: Path, summary: dict[str, Any]) -> None:
        if config.lora_rank:  # the adapter alone too (out/adapter[-STEP]): what a release commits and merges at import
            model.save_pretrained(str(target.with_name(target.name.replace("checkpoint", "adapter"))))
        merged = model.merge_and_unload() if config.lora_rank else model
        _save_checkpoint(merged, tokenizer, checkpoint, target)
        write_metadata(target, {**metadata, "trained": True, "dpo": summary})

    def on_step(step: int, history: list[dict[str, float]]) -> None:
        if step in save_steps and step < config.steps:  # a copy: merging the adapter in place would end training
            summary = {**summarise(history), "steps": step}
            save(copy.deepcopy(policy), out / f"checkpoint-{step}", summary)

    history = train_dpo(policy, reference, tokenizer, pairs, config, replay, on_step if save_steps else None)
    summary = summarise(history)
    save(policy, out / "checkpoint", summary)
    (out / "dpo.json").write_text(json.dumps({**summary, "history": history}, indent=2) + "\n")
    return summary


def _save_checkpoint(model: Any, tokenizer: Any, source: Path, target: Path) -> None:
    import shutil

    from guardserve.models.checkpoint import save_model

    target.mkdir(parents=True, exist_ok=True)
    for name in _TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
    save_model(model, target, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id or 0)


LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")  # Llama's projections


def _digests(path: Path) -> dict[str, str]:
    from guardserve.models.checkpoint import sha256_file

    return {str(f): sha256_file(f) for f in _jsonl_files(path)}


def gate_candidate(
    stable: Path,
    candidate: Path,
    recipe: Any,
    out: Path,
    tolerance: float = 0.02,
    per_task: int | None = None,
    chat_set: Path | None = None,
) -> dict[str, Any]:
    """Evaluate both checkpoints on the same held-out items and on the held-out feedback pairs of
    ``out/heldout.jsonl``; the candidate passes when no number regresses beyond ``tolerance`` and, if there are
    held-out pairs, their mean margin (log π(chosen) − log π(rejected)) rose. The items: the recipe's held-out
    suites (:func:`~guardserve.training.evaluate.runner.regression_gate`), or with ``chat_set`` (a pretrained chat
    model has no trainer recipe) a prompt set of ``guardserve train chat-eval`` (:func:`chat_regression_gate`,
    greedy, model only). Writes ``out/gate.json``."""
    import torch

    from guardserve.models.hf import transformers_offline

    pair = (("stable", stable), ("candidate", candidate))
    if chat_set is not None:
        from guardserve.training.evaluate.chat_eval import evaluate, load_set

        items = load_set(chat_set)
        chat = {name: evaluate(path, items, ["greedy"], system=False)["runs"]["greedy"]["model_only"]
                for name, path in pair}  # fmt: skip
        verdict = chat_regression_gate(chat["candidate"], chat["stable"], tolerance)
        numbers: dict[str, Any] = {name: {"chat_set": str(chat_set), **chat[name]} for name in chat}
    else:
        from guardserve.training.evaluate.runner import evaluate_checkpoint, regression_gate

        if per_task is not None:
            recipe = recipe.with_updates({"eval.per_task": per_task})
        results = {name: evaluate_checkpoint(path, recipe, privacy=False) for name, path in pair}
        verdict = regression_gate(results["candidate"], results["stable"], tolerance)
        numbers = {name: {k: results[name][k] for k in ("quality", "safety")} for name in results}
    held = [
        PreferencePair(tuple(row["prompt"]), row["chosen"], row["rejected"], row.get("partial") is True)
        for row in _jsonl_rows(out / "heldout.jsonl")
    ]
    feedback: dict[str, Any] = {"held_out_pairs": len(held)}
    if held:
        transformers = transformers_offline()
        tokenizer = transformers.AutoTokenizer.from_pretrained(candidate)
        for name, path in pair:
            model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
            feedback[f"{name}_margin"] = round(sum(pair_margin(model, tokenizer, p) for p in held) / len(held), 4)
        feedback["improved"] = feedback["candidate_margin"] > feedback["stable_margin"]
        if not feedback["improved"]:
            verdict["passed"] = False
            verdict["reasons"].append(
                f"held-out feedback margin {feedback['candidate_margin']} did not rise above"
                f" {feedback['stable_margin']}"
            )
    report = {"passed": verdict["passed"], "reasons": verdict["reasons"], "suites": verdict, "feedback": feedback,
              **numbers}  # fmt: skip
    (out / "gate.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


# chat-eval kinds and what the gate compares: harmful prompts must stay refused, the others answered and helped
CHAT_GATE: tuple[tuple[str, str, str], ...] = (
    ("harmful", "refused", ">="),
    ("lookalike", "refused", "<="),
    ("lookalike", "helpful", ">="),
    ("benign", "refused", "<="),
    ("benign", "helpful", ">="),
    ("general", "helpful", ">="),
)


def chat_regression_gate(candidate: dict[str, Any], stable: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """:func:`~guardserve.training.evaluate.chat_eval.score` of the candidate against the stable checkpoint's on
    the same prompts: no rate of :data:`CHAT_GATE` worse by more than ``tolerance``."""
    from guardserve.training.evaluate.runner import compare_to_stable

    rows = [(f"{kind}_{key}", candidate.get(kind, {}).get(key, {}).get("rate"), stable[kind][key]["rate"], op)
            for kind, key, op in CHAT_GATE if kind in stable]  # fmt: skip
    return compare_to_stable(rows, tolerance)
