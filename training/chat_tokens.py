"""Chat examples as token ids for fine-tuning a pretrained chat model (the smol LoRA, DPO): the prompt through the
tokenizer's chat template, then the answer and the end of turn; labels keep only the answer's tokens and the end
(loss on the assistant only); batches right-padded with an attention mask."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

IGNORE = -100  # the label of a token the loss skips (transformers' convention)


def encode_answer(
    tokenizer: Any, prompt: Sequence[dict[str, str]], answer: str, end: bool = True
) -> tuple[list[int], list[int]]:
    """Token ids of prompt + answer + end of turn, and labels that keep only the answer's tokens and the end
    (``end=False``: no end of turn, the answer is the opening of a longer one)."""
    head = tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)
    p = tokenizer.encode(head, add_special_tokens=False)
    a = [*tokenizer.encode(answer, add_special_tokens=False), *([tokenizer.eos_token_id] if end else [])]
    return p + a, [IGNORE] * len(p) + a


def pad_batch(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> tuple[Any, Any, Any]:
    """(ids, labels, attention mask) tensors, each row right-padded to the longest."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row_ids, row_labels) in enumerate(rows):
        ids[i, : len(row_ids)] = torch.tensor(row_ids)
        labels[i, : len(row_labels)] = torch.tensor(row_labels)
        mask[i, : len(row_ids)] = 1
    return ids, labels, mask
