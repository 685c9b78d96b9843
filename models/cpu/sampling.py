"""Next-token choice for one row of a batch: penalties, temperature, nucleus (top-p), seeded randomness.

Each request owns a ``torch.Generator``; seeded requests are reproducible no matter what else shares the batch.

Nothing a client can send makes this produce NaN: a temperature or top_p below
:data:`~models.engine.SAMPLING_EPS` is greedy (as in vLLM), the nucleus always keeps the most likely token, and
logits that are not all finite (a bad row) or probabilities that come out non-finite fall back to the argmax over
the finite logits. A row with no finite logit at all raises :class:`SamplingError`, which fails that row only.
"""

from __future__ import annotations

import secrets

import torch

from guardserve.models.engine import SamplingParams


class SamplingError(Exception):
    """This row cannot be sampled (no finite logit): fail its request, not the batch."""


class RowSampler:
    """Chooses tokens for one request. ``params`` should be resolved (see ``SamplingDefaults.apply``); a field
    still unset counts as OpenAI's default, 1.0."""

    def __init__(self, params: SamplingParams, vocab_size: int) -> None:
        self.params = params
        self._temperature = 1.0 if params.temperature is None else params.temperature
        self._top_p = 1.0 if params.top_p is None else params.top_p
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
        """Greedy with no penalties: the batch-wide argmax is this row's answer (when the row's logits are finite)."""
        return self._generator is None and self._counts is None

    def observe(self, token_id: int) -> None:
        if self._counts is not None:
            self._counts[token_id] += 1

    def choose(self, logits: torch.Tensor) -> int:
        """``logits``: 1-D float tensor over the vocabulary for this row."""
        p = self.params
        logits = logits.float()
        if self._counts is not None:
            logits = logits - p.frequency_penalty * self._counts - p.presence_penalty * (self._counts > 0).float()
        if not bool(torch.isfinite(logits).all()):
            return _finite_argmax(logits)
        if self._generator is None:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / self._temperature, dim=-1)
        if not bool(torch.isfinite(probs).all()):
            return int(torch.argmax(logits))
        if self._top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(sorted_probs, dim=-1)
            # drop tokens once the mass before them already reaches top_p; the first token always stays
            dropped = (cumulative - sorted_probs) >= self._top_p
            dropped[0] = False
            sorted_probs[dropped] = 0.0
            choice = torch.multinomial(sorted_probs, 1, generator=self._generator)
            return int(order[choice])
        return int(torch.multinomial(probs, 1, generator=self._generator))


def _finite_argmax(logits: torch.Tensor) -> int:
    finite = torch.isfinite(logits)
    if not bool(finite.any()):
        raise SamplingError("the model produced no finite logit for this sequence")
    return int(torch.argmax(torch.where(finite, logits, float("-inf"))))
