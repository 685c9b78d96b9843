"""A running batch of sequences that share one key/value cache: continuous batching over the model's forward pass.

Layout: rows are *right-aligned*. Every row's newest token sits in the last cache column and a row shorter than
the longest one is padded on the left (attention mask 0 there). That makes a decode step one forward pass of
shape ``[rows, 1]`` for everybody, with per-row position ids. New sequences are prefilled together (left-padded,
one forward pass), then their caches are merged in by padding whichever side is shorter; finished sequences
leave by selecting the remaining rows. Columns that became padding for every row are trimmed away.

Only the model's public forward (``input_ids``, ``attention_mask``, ``position_ids``, ``past_key_values``) and the
per-layer ``keys``/``values`` tensors of transformers' ``DynamicCache`` are used.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache

TRIM_SLACK = 32  # trim all-padding columns once there are at least this many (trimming copies the cache)


class RunningBatch:
    def __init__(self, model: Any) -> None:
        self._model = model
        self._cache: Any = None  # transformers.DynamicCache; its layers' keys/values are edited in place
        self._mask = torch.zeros((0, 0), dtype=torch.long)  # [rows, columns]: 1 = real token, 0 = padding
        self._positions = torch.zeros(0, dtype=torch.long)  # next position id per row

    @property
    def size(self) -> int:
        return int(self._mask.shape[0])

    @property
    def columns(self) -> int:
        return int(self._mask.shape[1])

    def add(self, prompts: list[list[int]]) -> torch.Tensor:
        """Prefill ``prompts`` in one forward pass and append them as new rows. Returns their next-token logits."""
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), 0, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        cache = DynamicCache()
        out = self._model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self._merge(cache, mask, torch.tensor([len(p) for p in prompts], dtype=torch.long))
        logits: torch.Tensor = out.logits[:, -1, :]
        return logits

    def step(self, next_tokens: list[int]) -> torch.Tensor:
        """Feed one token per row (in row order); returns next-token logits ``[rows, vocab]``."""
        assert self._cache is not None
        ids = torch.tensor(next_tokens, dtype=torch.long).unsqueeze(1)
        self._mask = torch.cat([self._mask, torch.ones((self.size, 1), dtype=torch.long)], dim=1)
        out = self._model(
            input_ids=ids,
            attention_mask=self._mask,
            position_ids=self._positions.unsqueeze(1),
            past_key_values=self._cache,
            use_cache=True,
        )
        self._positions = self._positions + 1
        logits: torch.Tensor = out.logits[:, -1, :]
        return logits

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (in this order); drop the rest."""
        if len(rows) == self.size:
            return
        if not rows:
            self._cache = None
            self._mask = torch.zeros((0, 0), dtype=torch.long)
            self._positions = torch.zeros(0, dtype=torch.long)
            return
        index = torch.tensor(rows, dtype=torch.long)
        assert self._cache is not None
        for layer in self._cache.layers:
            layer.keys = layer.keys.index_select(0, index)
            layer.values = layer.values.index_select(0, index)
        self._mask = self._mask.index_select(0, index)
        self._positions = self._positions.index_select(0, index)
        self._trim()

    def _merge(self, cache: Any, mask: torch.Tensor, lengths: torch.Tensor) -> None:
        if self._cache is None:
            self._cache, self._mask, self._positions = cache, mask, lengths
            return
        width = max(self.columns, int(mask.shape[1]))
        for old, new in zip(self._cache.layers, cache.layers, strict=True):
            old.keys = torch.cat([_left_pad(old.keys, width), _left_pad(new.keys, width)], dim=0)
            old.values = torch.cat([_left_pad(old.values, width), _left_pad(new.values, width)], dim=0)
        self._mask = torch.cat([_left_pad_mask(self._mask, width), _left_pad_mask(mask, width)], dim=0)
        self._positions = torch.cat([self._positions, lengths])

    def _trim(self) -> None:
        assert self._cache is not None
        real = self._mask.sum(dim=0).nonzero()
        first = int(real[0]) if len(real) else self.columns
        if first < TRIM_SLACK:
            return
        for layer in self._cache.layers:
            layer.keys = layer.keys[:, :, first:, :].contiguous()
            layer.values = layer.values[:, :, first:, :].contiguous()
        self._mask = self._mask[:, first:]


def _left_pad(kv: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - kv.shape[2]
    if missing == 0:
        return kv
    pad = torch.zeros((kv.shape[0], kv.shape[1], missing, kv.shape[3]), dtype=kv.dtype)
    return torch.cat([pad, kv], dim=2)


def _left_pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - mask.shape[1]
    if missing == 0:
        return mask
    return torch.cat([torch.zeros((mask.shape[0], missing), dtype=mask.dtype), mask], dim=1)
