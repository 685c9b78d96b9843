"""Next-token choice for one row of a batch: penalties, temperature, nucleus (top-p), seeded randomness.

Each request owns a ``torch.Generator``; seeded requests are reproducible no matter what else shares the batch.
"""

from __future__ import annotations

import secrets

import torch

from models.engine import SamplingParams


class RowSampler:
    def __init__(self, params: SamplingParams, vocab_size: int) -> None:
        self.params = params
        self._generator: torch.Generator | None = None
        if not params.greedy:
            self._generator = torch.Generator()
            seed = params.seed if params.seed is not None else secrets.randbits(63)
            self._generator.manual_seed(seed)
        self._counts: torch.Tensor | None = None
        if params.presence_penalty or params.frequency_penalty:
            self._counts = torch.zeros(vocab_size)

    @property
    def plain_greedy(self) -> bool:
        """Greedy with no penalties: the batch-wide argmax is this row's answer."""
        return self._generator is None and self._counts is None

    def observe(self, token_id: int) -> None:
        if self._counts is not None:
            self._counts[token_id] += 1

    def choose(self, logits: torch.Tensor) -> int:
        """``logits``: 1-D float tensor over the vocabulary for this row."""
        p = self.params
        if self._counts is not None:
            logits = logits - p.frequency_penalty * self._counts - p.presence_penalty * (self._counts > 0).float()
        if self._generator is None:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits.float() / p.temperature, dim=-1)
        if p.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(sorted_probs, dim=-1)
            # drop tokens once the mass before them already reaches top_p (the first token always stays)
            sorted_probs[(cumulative - sorted_probs) >= p.top_p] = 0.0
            choice = torch.multinomial(sorted_probs, 1, generator=self._generator)
            return int(order[choice])
        return int(torch.multinomial(probs, 1, generator=self._generator))
