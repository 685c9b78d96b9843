"""Log-likelihoods under a checkpoint: perplexity of dialogues, and per-candidate scores for canary exposure."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from guardserve.models.hf import transformers_offline
from guardserve.training.data import IGNORE, Doc, pack


def load(checkpoint: Path) -> tuple[Any, Any]:
    transformers = transformers_offline()
    model = transformers.AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    model.eval()
    from tokenizers import Tokenizer

    return model, Tokenizer.from_file(str(checkpoint / "tokenizer.json"))


def perplexity(model: Any, docs: list[Doc], seq_len: int, pad_id: int, batch: int = 32) -> float:
    """exp(mean loss over the learned tokens): assistant turns of chats, whole texts."""
    if not docs:
        return math.nan
    ids, labels = pack(docs, seq_len, pad_id)
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(ids), batch):
            x = torch.from_numpy(ids[start : start + batch])
            y = torch.from_numpy(labels[start : start + batch])
            logits = model(input_ids=x).logits[:, :-1].float()
            target = y[:, 1:]
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE, reduction="sum"
            )
            total += float(loss)
            count += int((target != IGNORE).sum())
    return math.exp(total / max(1, count))


def span_logprobs(model: Any, sequences: list[list[int]], spans: list[tuple[int, int]], batch: int = 256) -> np.ndarray:
    """Sum of log p(token) over tokens ``[start, end)`` of each sequence (the secret), batched.

    Returns the *negative* log-likelihood in nats per sequence (the log-perplexity Carlini et al. rank).
    """
    out = np.zeros(len(sequences))
    width = max(len(s) for s in sequences)
    with torch.inference_mode():
        for b in range(0, len(sequences), batch):
            rows = sequences[b : b + batch]
            x = torch.zeros((len(rows), width), dtype=torch.long)
            for i, row in enumerate(rows):
                x[i, : len(row)] = torch.tensor(row)
            logp = torch.log_softmax(model(input_ids=x).logits.float(), dim=-1)
            for i in range(len(rows)):
                start, end = spans[b + i]
                positions = torch.arange(start, end)
                tokens = x[i, start:end]
                out[b + i] = -float(logp[i, positions - 1, tokens].sum())
    return out
