"""Token ids and the loss mask, and packing into fixed-length rows.

A chat record is ``<|role|>content<|end|>`` per turn, exactly as the chat template renders it; only assistant
content and its ``<|end|>`` are learned (label = token id), everything else is ``-100``. A text record is learned
whole and ends with ``<|endoftext|>``. Rows are filled with whole documents (a longer one is cut into pieces),
padded at the end; the order is reshuffled every epoch from ``(seed, epoch)``, so a resumed run sees the same
batches as an uninterrupted one.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from guardserve.models.checkpoint import END_OF_TURN, PAD_TOKEN
from guardserve.training.records import Record

IGNORE = -100


@dataclass(frozen=True)
class Doc:
    ids: list[int]
    labels: list[int]


def encode(record: Record, tokenizer: Any) -> Doc:
    end = tokenizer.token_to_id(END_OF_TURN)
    if record.messages is None:
        text_ids = [
            *tokenizer.encode(record.text or "", add_special_tokens=False).ids,
            tokenizer.token_to_id(PAD_TOKEN),
        ]
        return Doc(text_ids, list(text_ids))
    ids: list[int] = []
    labels: list[int] = []
    contents = tokenizer.encode_batch([m["content"] for m in record.messages], add_special_tokens=False)
    for message, encoded in zip(record.messages, contents, strict=True):
        role = tokenizer.token_to_id(f"<|{message['role']}|>")
        turn = [role, *encoded.ids, end]
        ids.extend(turn)
        if message["role"] == "assistant":
            labels.extend([IGNORE, *encoded.ids, end])
        else:
            labels.extend([IGNORE] * len(turn))
    return Doc(ids, labels)


def encode_all(records: list[Record], tokenizer: Any) -> list[Doc]:
    return [encode(r, tokenizer) for r in records]


def pack(docs: list[Doc], seq_len: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy: whole documents into rows of ``seq_len`` (a longer document is cut into pieces)."""
    rows_ids: list[list[int]] = []
    rows_labels: list[list[int]] = []
    cur_ids: list[int] = []
    cur_labels: list[int] = []
    for doc in docs:
        pieces = [(doc.ids[i : i + seq_len], doc.labels[i : i + seq_len]) for i in range(0, len(doc.ids), seq_len)]
        for ids, labels in pieces:
            if len(cur_ids) + len(ids) > seq_len:
                rows_ids.append(cur_ids)
                rows_labels.append(cur_labels)
                cur_ids, cur_labels = [], []
            cur_ids = cur_ids + ids
            cur_labels = cur_labels + labels
    if cur_ids:
        rows_ids.append(cur_ids)
        rows_labels.append(cur_labels)
    ids_arr = np.full((len(rows_ids), seq_len), pad_id, dtype=np.int64)
    labels_arr = np.full((len(rows_ids), seq_len), IGNORE, dtype=np.int64)
    for i, (ids, labels) in enumerate(zip(rows_ids, rows_labels, strict=True)):
        ids_arr[i, : len(ids)] = ids
        labels_arr[i, : len(labels)] = labels
    return ids_arr, labels_arr


def epoch_rows(docs: list[Doc], seq_len: int, pad_id: int, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    order = list(range(len(docs)))
    random.Random(f"epoch:{seed}:{epoch}").shuffle(order)
    ids, labels = pack([docs[i] for i in order], seq_len, pad_id)
    perm = np.random.default_rng([seed, epoch]).permutation(len(ids))
    return ids[perm], labels[perm]


def batches(
    docs: list[Doc], seq_len: int, batch_size: int, pad_id: int, seed: int, rank: int = 0, world: int = 1
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Endless (epoch, ids, labels) batches; process ``rank`` of ``world`` takes every world-th batch."""
    epoch = 0
    k = 0
    while True:
        ids, labels = epoch_rows(docs, seq_len, pad_id, seed, epoch)
        for start in range(0, len(ids) - batch_size + 1, batch_size):
            if k % world == rank:
                yield epoch, ids[start : start + batch_size], labels[start : start + batch_size]
            k += 1
        epoch += 1
