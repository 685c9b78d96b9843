"""The async guards. One protocol serves whole texts and streams alike.

A guard *inspects* a text and says what it found (:class:`Inspection`); the policy's action for that guard decides
what happens (block, transform, flag). Streams need one more thing: :meth:`Guard.tail_hold` says where, near the end
of not-yet-released text, something might be starting that more text could turn into a match (half an e-mail, the
first digits of a card number), so the stream screen holds it back.

CPU-bound work (Presidio, classifiers, regexes over long texts) runs in the guard executor, never on the event loop;
classifier calls from concurrent requests are batched (:mod:`guardrails.batching`). A long text goes to Presidio in
bounded pieces, one worker call each (:func:`pieces`): cancelling the inspection (the client left, the deadline
passed) stops it after the piece in progress instead of after the whole text.
"""

from __future__ import annotations

import asyncio
import dataclasses
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from guardrails.batching import MicroBatcher
from guardrails.injection import InjectionDetector
from guardrails.pii.engine import PIIEngine, resolve_overlaps
from guardrails.pii.pseudonyms import Pseudonymizer
from guardrails.tails import number_start, word_start
from guardrails.types import Action, Finding

INLINE_LIMIT = 2048  # regex work on texts up to this many characters is cheap enough to run inline
FAST_LANE_LIMIT = 4096  # Presidio work on texts up to this size goes to the fast lane: never queued behind big ones
PIECE_CHARS = 4096  # longer texts are analysed in pieces of this size ...
PIECE_OVERLAP = 256  # ... overlapping by this much, so an entity up to this long at a boundary is seen whole


def pieces(length: int, size: int = PIECE_CHARS, overlap: int = PIECE_OVERLAP) -> list[tuple[int, int, int]]:
    """``(start, end, owned_end)`` of the pieces covering ``[0, length)``. Consecutive pieces overlap by
    ``overlap``; each piece *owns* the findings that start in ``[start, owned_end)`` (the next piece owns the
    overlap, and sees an entity starting there whole if it is at most ``overlap`` long)."""
    if length <= size:
        return [(0, length, length)]
    step = size - overlap
    out: list[tuple[int, int, int]] = []
    start = 0
    while start + size < length:
        out.append((start, start + size, start + step))
        start += step
    out.append((start, length, length))
    return out


@dataclass(frozen=True)
class Inspection:
    triggered: bool  # the guard's condition is met (something found, score over threshold)
    findings: tuple[Finding, ...] = ()  # spans for transforming guards; a whole-text finding for classifiers
    score: float | None = None


class Guard(Protocol):
    name: str
    action: Action
    spans: bool  # findings are spans of the text (PII) rather than a verdict on the whole text (classifiers)

    async def inspect(self, text: str) -> Inspection:
        """Inspect off the event loop (a worker thread, or a batch shared with other requests)."""
        ...

    def inspect_now(self, text: str) -> Inspection:
        """The same inspection, synchronously, for a caller already off the event loop (the stream screen runs
        all of a window's guards in one worker call: no thread hops, no threads contending for the GIL)."""
        ...

    def transform(self, text: str, findings: tuple[Finding, ...], pseudonyms: Pseudonymizer | None) -> str: ...

    def tail_hold(self, pending: str) -> int:
        """Index in ``pending`` from which text must be held back in a stream (``len(pending)``: nothing)."""
        ...




class PIIGuard:
    name = "pii"
    spans = True

    def __init__(
        self,
        engine: PIIEngine,
        action: Action,
        executor: Executor | None,
        hash_salt: str,
        bulk_executor: Executor | None = None,
    ) -> None:
        self.engine = engine
        self.action = action
        self._executor = executor  # short texts (streaming windows, chat turns)
        self._bulk = bulk_executor or executor  # long prompts: their own threads, so short ones never wait behind
        self._salt = hash_salt

        self.pieces_analyzed = 0  # worker calls made for long texts (observability and tests)

    async def inspect(self, text: str) -> Inspection:
        loop = asyncio.get_running_loop()
        if len(text) <= FAST_LANE_LIMIT:
            return await loop.run_in_executor(self._executor, self.inspect_now, text)
        found: list[Finding] = []
        for start, end, owned_end in pieces(len(text)):  # each await is a point where cancellation stops the work
            part = await loop.run_in_executor(self._bulk, self._analyze_piece, text[start:end])
            found += [shifted(f, start) for f in part if start + f.start < owned_end]
        return _inspection(resolve_overlaps(found))

    def _analyze_piece(self, piece: str) -> list[Finding]:
        self.pieces_analyzed += 1  # counted in the worker, as the work starts
        return self.engine.analyze(piece)

    def inspect_now(self, text: str) -> Inspection:
        return _inspection(self.engine.analyze(text))

    def transform(self, text: str, findings: tuple[Finding, ...], pseudonyms: Pseudonymizer | None) -> str:
        if self.action is Action.PSEUDONYMIZE:
            if pseudonyms is None:
                raise ValueError("pseudonymization needs the request's Pseudonymizer")
            return self.engine.transform(text, findings, self.action, pseudonym=pseudonyms.placeholder)
        return self.engine.transform(text, findings, self.action, hash_salt=self._salt)

    def tail_hold(self, pending: str) -> int:
        """From a word still being written, or a run of digits and separators (phone, card, SSN with spaces or
        dashes) with the two-letter country code an IBAN starts with ("DE89 3704 ..."): the code is never sent
        ahead. Linear scans from the end (:mod:`guardrails.tails`): this runs on the event loop for every chunk."""
        start = word_start(pending)
        number = number_start(pending)
        return start if number is None else min(start, number)


def shifted(finding: Finding, offset: int) -> Finding:
    return dataclasses.replace(finding, start=finding.start + offset, end=finding.end + offset)


def _inspection(findings: list[Finding]) -> Inspection:
    return Inspection(bool(findings), tuple(findings), max((f.score for f in findings), default=None))


class _WholeTextGuard:
    """Base for guards that judge a text as a whole (classifiers, heuristics): block or flag, never transform."""

    name = "whole_text"
    spans = False

    def __init__(self, action: Action, threshold: float) -> None:
        if action.transforms:
            raise ValueError(f"guard {self.name!r} can block or flag, not {action.value}")
        self.action = action
        self.threshold = threshold

    def _inspection(self, text: str, score: float) -> Inspection:
        triggered = score >= self.threshold
        findings = (Finding(self.name, 0, len(text), score),) if triggered else ()
        return Inspection(triggered, findings, score)

    def transform(self, text: str, findings: tuple[Finding, ...], pseudonyms: Pseudonymizer | None) -> str:
        return text

    def tail_hold(self, pending: str) -> int:
        return len(pending)


class ToxicityGuard(_WholeTextGuard):
    name = "toxicity"

    def __init__(self, batcher: MicroBatcher, action: Action, threshold: float) -> None:
        super().__init__(action, threshold)
        self._batcher = batcher

    async def inspect(self, text: str) -> Inspection:
        if not text.strip():
            return Inspection(False, (), 0.0)
        return self._inspection(text, await self._batcher.submit(text))

    def inspect_now(self, text: str) -> Inspection:
        if not text.strip():
            return Inspection(False, (), 0.0)
        return self._inspection(text, self._batcher.score_now(text))


class InjectionGuard(_WholeTextGuard):
    name = "prompt_injection"

    def __init__(
        self, detector: InjectionDetector, action: Action, threshold: float, executor: Executor | None
    ) -> None:
        super().__init__(action, threshold)
        self._detector = detector
        self._executor = executor

    async def inspect(self, text: str) -> Inspection:
        if len(text) <= INLINE_LIMIT:
            return self.inspect_now(text)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.inspect_now, text)

    def inspect_now(self, text: str) -> Inspection:
        matches = self._detector.matches(text)
        score = self._detector.score(matches)
        inspection = self._inspection(text, score)
        if inspection.triggered:  # report which rules fired (names only: never the matched text)
            found = tuple(Finding(m.rule.upper(), m.start, m.end, m.weight) for m in matches)
            return Inspection(True, found, score)
        return inspection
