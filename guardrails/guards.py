"""The async guards. One protocol serves whole texts and streams alike.

A guard *inspects* a text and says what it found (:class:`Inspection`); the policy's action for that guard decides
what happens (block, transform, flag). Streams need one more thing: :meth:`Guard.tail_hold` says where, near the end
of not-yet-released text, something might be starting that more text could turn into a match (half an e-mail, the
first digits of a card number), so the stream screen holds it back.

CPU-bound work (Presidio, classifiers, regexes over long texts) runs in the guard executor, never on the event loop;
classifier calls from concurrent requests are batched (:mod:`guardrails.batching`). The PII guard screens all of a
request's texts in one worker call (:meth:`PIIGuard.inspect_many`): one request's Presidio work holds one thread at a
time, so concurrent requests are served in arrival order (first come, first done) instead of all advancing piece by
piece and all finishing late. A long text goes to Presidio in bounded pieces (:func:`pieces`), merged in the worker
(:func:`merge_pieces`); the worker checks before each piece whether the inspection was given up (the client left,
the deadline passed) and stops there instead of after the whole text.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from guardserve.guardrails.batching import MicroBatcher, PreparedBatcher
from guardserve.guardrails.injection import InjectionDetector
from guardserve.guardrails.pii.engine import PIIEngine
from guardserve.guardrails.pii.overlaps import resolve_overlaps
from guardserve.guardrails.pii.pseudonyms import Pseudonymizer
from guardserve.guardrails.tails import number_start, word_start
from guardserve.guardrails.types import Action, Finding

INLINE_LIMIT = 2048  # regex work on texts up to this many characters is cheap enough to run inline
FAST_LANE_LIMIT = 4096  # Presidio work on this many characters at most goes to the fast lane: never behind big ones
PIECE_CHARS = 4096  # longer texts are analysed in pieces of this size ...
PIECE_OVERLAP = 256  # ... overlapping by this much, so an entity up to this long at a boundary is seen whole


def pieces(length: int, size: int = PIECE_CHARS, overlap: int = PIECE_OVERLAP) -> list[tuple[int, int, int]]:
    """``(start, end, owned_end)`` of the pieces covering ``[0, length)``. Consecutive pieces overlap by
    ``overlap``; each piece *owns* the findings that start in ``[owned_end of the previous piece, owned_end)``. The
    boundary between two pieces' owned ranges lies in the middle of their overlap, so a finding near it is owned by a
    piece that sees ``overlap // 2`` characters of context on either side of the boundary (never a piece that starts
    right there, without left context).

    An entity up to ``overlap`` long is seen whole by one of the two pieces at a boundary, and kept once. Limit:
    detection is per piece, so an entity longer than ``overlap`` that covers a whole overlap is seen by neither piece
    whole. Where each piece finds its part (a custom regex such as ``[0-9a-f]{64,}``), the parts are joined into one
    span (:func:`merge_pieces`), so nothing of it stays unmasked; where only the whole value matches (a deny-list
    entry, a pattern anchored at both ends), it may go undetected.
    """
    if length <= size:
        return [(0, length, length)]
    step = size - overlap
    out: list[tuple[int, int, int]] = []
    start = 0
    while start + size < length:
        out.append((start, start + size, start + step + overlap // 2))
        start += step
    out.append((start, length, length))
    return out


def merge_pieces(parts: Sequence[tuple[tuple[int, int, int], Sequence[Finding]]]) -> list[Finding]:
    """The findings of a text analysed in :func:`pieces`: ``parts`` is each piece (``(start, end, owned_end)``) with
    its own findings (non-overlapping, in the piece's coordinates). Non-overlapping findings, in text order.

    A piece keeps the findings it owns (by start), and those that start before its owned range but reach past the
    end of the previous piece (the tail of an entity the previous piece saw only truncated). Findings of one entity
    type from different pieces that overlap or touch are joined into one span (the union: no part of an entity cut
    by a piece end stays unmasked); the rest is resolved as within one piece (:func:`resolve_overlaps`).
    O(n log n) in the number of findings.
    """
    kept: list[tuple[Finding, int]] = []  # finding, index of its piece
    owned_start = previous_end = 0
    for index, ((start, end, owned_end), found) in enumerate(parts):
        for f in found:
            g = shifted(f, start)
            if owned_start <= g.start < owned_end or (index and g.start < owned_start and g.end > previous_end):
                kept.append((g, index))
        owned_start, previous_end = owned_end, end
    return resolve_overlaps(_join_across_pieces(kept))


def _join_across_pieces(kept: list[tuple[Finding, int]]) -> list[Finding]:
    """One span for findings of the same type from different pieces that overlap or touch (score: the highest).
    The rest keep their order (the order breaks ties in :func:`resolve_overlaps`)."""
    joined: list[tuple[int, Finding]] = []  # (position in kept of the span's first part, the span)
    current: tuple[int, Finding] | None = None
    last_piece = -1
    order = sorted(range(len(kept)), key=lambda n: (kept[n][0].entity_type, kept[n][0].start, kept[n][0].end))
    for n in order:
        f, index = kept[n]
        if current is not None:
            first, span = current
            if f.entity_type == span.entity_type and index > last_piece and f.start <= span.end:
                span = Finding(span.entity_type, span.start, max(span.end, f.end), max(span.score, f.score))
                current, last_piece = (min(first, n), span), index
                continue
            joined.append(current)
        current, last_piece = (n, f), index
    if current is not None:
        joined.append(current)
    return [span for _, span in sorted(joined, key=lambda item: item[0])]


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


@runtime_checkable
class InspectsMany(Protocol):
    """A guard that screens many texts (one request's messages) in one call; :func:`~guardrails.screening.screen`
    uses it instead of one :meth:`Guard.inspect` per text."""

    async def inspect_many(self, texts: Sequence[str], deadline: float | None = None) -> list[Inspection | Exception]:
        """One result per text: its inspection, or the exception inspecting it raised (``TimeoutError`` for texts not
        done when ``deadline`` seconds have passed)."""
        ...


class _Call:
    """One worker call over a request's texts. The worker checks ``abandoned`` before each text and each piece: a
    call given up (client gone, deadline passed) stops after the piece in progress, or never starts if queued."""

    def __init__(self) -> None:
        self.abandoned = False
        self.results: list[Inspection | Exception] = []  # the texts done so far, in order


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
        batcher: PreparedBatcher | None = None,
    ) -> None:
        self.engine = engine
        self.action = action
        self._executor = executor  # requests with little text (chat turns, short answers)
        self._bulk = bulk_executor or executor  # long prompts: their own threads, so short ones never wait behind
        self._salt = hash_salt
        self._batcher = batcher  # fast-lane calls of concurrent requests share one NER pass (None: one call each)
        self.pieces_analyzed = 0  # pieces of long texts analysed (observability and tests)

    async def inspect(self, text: str) -> Inspection:
        result = (await self.inspect_many([text]))[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def inspect_many(self, texts: Sequence[str], deadline: float | None = None) -> list[Inspection | Exception]:
        """All ``texts`` in one worker call: the fast lane when they are short together (batched with concurrent
        requests' fast-lane calls when the guard has a :class:`~guardrails.batching.PreparedBatcher`), else the bulk
        lane. Past
        ``deadline`` seconds (queued time included) the call is given up: the texts done keep their inspections, the
        others get ``TimeoutError``. Cancelled, the call is given up too (if still queued, it never runs)."""
        if not texts:
            return []
        fast = sum(len(t) for t in texts) <= FAST_LANE_LIMIT
        call = _Call()
        todo = list(texts)
        future: asyncio.Future[list[Inspection | Exception]]
        if fast and self._batcher is not None:  # with other requests' short texts: one NER pass for all
            job = self._batcher.run(todo, call, lambda: self._inspect_all(todo, call), tag=self.engine.scope)
            future = asyncio.ensure_future(job)
        else:
            lane = self._executor if fast else self._bulk
            future = asyncio.get_running_loop().run_in_executor(lane, self._inspect_all, todo, call)
        try:
            done, _ = await asyncio.wait({future}, timeout=deadline)
        except asyncio.CancelledError:
            call.abandoned = True
            future.cancel()
            raise
        if not done:
            call.abandoned = True
            future.cancel()
            results = list(call.results)
            return results + [TimeoutError("guard timed out")] * (len(texts) - len(results))
        return future.result()

    def _inspect_all(self, texts: list[str], call: _Call) -> list[Inspection | Exception]:
        """In the worker: every text in turn; a failing text is an error result, not an exception."""
        for text in texts:
            if call.abandoned:
                break
            try:
                result: Inspection | Exception = self._inspect_text(text, call)
            except Exception as exc:
                result = exc
            call.results.append(result)
        return call.results

    def _inspect_text(self, text: str, call: _Call) -> Inspection:
        if len(text) <= PIECE_CHARS:
            return self.inspect_now(text)
        parts: list[tuple[tuple[int, int, int], list[Finding]]] = []
        for piece in pieces(len(text)):
            if call.abandoned:
                raise TimeoutError("inspection given up")
            self.pieces_analyzed += 1  # counted as the work starts
            parts.append((piece, self.engine.analyze(text[piece[0] : piece[1]])))
        return _inspection(merge_pieces(parts))

    def inspect_now(self, text: str) -> Inspection:
        return _inspection(self.engine.analyze(text))

    @property
    def cache_key(self) -> str:
        """What a cached inspection depends on besides the text (:class:`~guardrails.cache.ScreeningCache`): the
        engine's configuration and NLP model (the action applies afterwards, per request)."""
        return f"pii|{self.engine.nlp.model}|{id(self.engine)}|{self.engine.config.model_dump_json()}"

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


class Scorer(Protocol):
    """A classifier's score for one text: batched with other requests' texts (:meth:`submit`), or now, in the
    calling thread (:meth:`score_now`, for callers already off the event loop)."""

    async def submit(self, text: str) -> float: ...

    def score_now(self, text: str) -> float: ...


class CategoryScorer:
    """One category's score out of a classifier that scores every task in one pass (the semantic classifier): the
    guards of a request share one batched call per text (:class:`~guardrails.batching.MicroBatcher` shares a text
    asked for twice)."""

    def __init__(self, batcher: MicroBatcher[dict[str, float]], task: str) -> None:
        self._batcher = batcher
        self.task = task

    async def submit(self, text: str) -> float:
        return (await self._batcher.submit(text))[self.task]

    def score_now(self, text: str) -> float:
        return self._batcher.score_now(text)[self.task]


class ClassifierGuard(_WholeTextGuard):
    """A classifier's verdict on a whole text: triggered at ``threshold`` or more."""

    def __init__(self, name: str, scorer: Scorer, action: Action, threshold: float) -> None:
        self.name = name
        super().__init__(action, threshold)
        self._scorer = scorer

    async def inspect(self, text: str) -> Inspection:
        if not text.strip():
            return Inspection(False, (), 0.0)
        return self._inspection(text, await self._scorer.submit(text))

    def inspect_now(self, text: str) -> Inspection:
        if not text.strip():
            return Inspection(False, (), 0.0)
        return self._inspection(text, self._scorer.score_now(text))


class ToxicityGuard(ClassifierGuard):
    def __init__(self, scorer: Scorer, action: Action, threshold: float) -> None:
        super().__init__("toxicity", scorer, action, threshold)


class HarmfulRequestGuard(ClassifierGuard):
    def __init__(self, scorer: Scorer, action: Action, threshold: float) -> None:
        super().__init__("harmful_request", scorer, action, threshold)


class InjectionGuard(_WholeTextGuard):
    """The semantic classifier's injection score (when given a ``scorer``) and the regex rules as extra evidence:
    the text's score is the higher of the two. Findings name the rules that fired (never the matched text)."""

    name = "prompt_injection"

    def __init__(
        self,
        detector: InjectionDetector,
        action: Action,
        threshold: float,
        executor: Executor | None,
        scorer: Scorer | None = None,
    ) -> None:
        super().__init__(action, threshold)
        self._detector = detector
        self._executor = executor
        self._scorer = scorer

    async def inspect(self, text: str) -> Inspection:
        semantic = await self._scorer.submit(text) if self._scorer is not None and text.strip() else 0.0
        if len(text) <= INLINE_LIMIT:
            return self._combined(text, semantic)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._combined, text, semantic)

    def inspect_now(self, text: str) -> Inspection:
        semantic = self._scorer.score_now(text) if self._scorer is not None and text.strip() else 0.0
        return self._combined(text, semantic)

    def _combined(self, text: str, semantic: float) -> Inspection:
        matches = self._detector.matches(text)
        score = max(semantic, self._detector.score(matches))
        inspection = self._inspection(text, score)
        if inspection.triggered and matches:  # report which rules fired (names only: never the matched text)
            found = tuple(Finding(m.rule.upper(), m.start, m.end, m.weight) for m in matches)
            return Inspection(True, inspection.findings + found, score)
        return inspection
