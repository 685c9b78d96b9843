"""Prompt token counts for reservations: one :class:`TokenCounter` per served model, loaded on first use."""

from __future__ import annotations

import asyncio
import logging

from guardserve.models.engine import GenerationRequest
from guardserve.models.registry import ServedModel
from guardserve.models.tokens import EstimateCounter, TokenCounter, TokenizerCounter, request_chars

log = logging.getLogger(__name__)


class TokenCounters:
    def __init__(self, chars_per_token: float = 3.0, thread_above_chars: int = 8192) -> None:
        self._estimate = EstimateCounter(chars_per_token)
        self._thread_above = thread_above_chars
        self._counters: dict[str, TokenCounter] = {}
        self._loading: dict[str, asyncio.Future[TokenCounter]] = {}

    async def counter(self, served: ServedModel) -> TokenCounter:
        counter = self._counters.get(served.name)
        if counter is not None:
            return counter
        if served.name not in self._loading:
            self._loading[served.name] = asyncio.ensure_future(self._load(served))
        counter = await asyncio.shield(self._loading[served.name])
        self._counters[served.name] = counter
        return counter

    async def _load(self, served: ServedModel) -> TokenCounter:
        directory = served.tokenizer_dir
        if directory is not None and (directory / "tokenizer.json").is_file():
            try:
                return await asyncio.to_thread(TokenizerCounter.from_dir, directory)
            except Exception as exc:
                log.warning("cannot load the tokenizer of %s (%s); estimating prompt tokens", served.name, exc)
        else:
            log.info("no tokenizer for %s: prompt tokens are estimated for rate limits", served.name)
        return self._estimate

    def estimate(self, text: str) -> int:
        """A text's tokens estimated from its characters (conservative: over-counts)."""
        return self._estimate.text_tokens(text)

    async def count(self, served: ServedModel, request: GenerationRequest) -> int:
        counter = await self.counter(served)
        if request_chars(request) > self._thread_above:
            return await asyncio.to_thread(counter.count, request)
        return counter.count(request)
