"""Screen streamed output before any of it leaves: a rolling hold-back buffer (after NeMo Guardrails' RollingBuffer).

New text accumulates in *pending*. Once there is enough (``chunk_chars`` beyond the ``holdback_chars`` tail — started
a little early, by as many characters as arrive during one screening, so the guards' own time overlaps with
generation), the guards inspect a window = the last ``context_chars`` of already-released text + all of pending, and a
prefix of pending is released:

* never the newest ``holdback_chars`` (more text may change what the window means);
* never from where a guard says a match might be starting (a word still being written, a run of digits) — this is
  what keeps an e-mail or a card number split across chunks from leaking piecemeal;
* never through the middle of a finding: the cut moves back to the finding's start.

Transforming guards (PII) rewrite their findings inside the released prefix; blocking guards (toxicity) judge the
whole window, so a toxic phrase straddling the cut is seen before either half is sent. A window's guards run one after
the other in a single worker-thread call (no thread hops, no guards contending for the GIL). When the generation ends,
everything left is screened and released. After a block nothing more is released.

Pseudonym placeholders produced at the input stage are restored last (:class:`~guardrails.pii.pseudonyms
.StreamRestorer`), so the caller reads the original values and no placeholder is ever split.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from guardrails.guards import Guard, Inspection
from guardrails.pii.pseudonyms import Pseudonymizer, StreamRestorer
from guardrails.policy import StreamSpec
from guardrails.types import Action, Decision, Finding, Stage


@dataclass(frozen=True)
class StreamStep:
    text: str  # safe to send now (may be empty)
    blocked: Decision | None = None


class _Tally:
    """What one guard did over the whole stream, for the explanation and metrics."""

    def __init__(self) -> None:
        self.action = Action.ALLOW
        self.counts: Counter[str] = Counter()
        self.latency_ms = 0.0
        self.error: str | None = None
        self.score: float | None = None


class _ScreenTime:
    """How long screening one window takes, recently, across all streams of this process (a moving average)."""

    estimate_ms = 5.0

    @classmethod
    def observe(cls, ms: float) -> None:
        cls.estimate_ms = 0.9 * cls.estimate_ms + 0.1 * min(ms, 100.0)


class StreamScreen:
    def __init__(
        self,
        guards: Sequence[Guard],
        spec: StreamSpec,
        *,
        pseudonyms: Pseudonymizer | None = None,
        fail_closed: bool = True,
        executor: Executor | None = None,
    ) -> None:
        self._guards = list(guards)
        self._spec = spec
        self._fail_closed = fail_closed
        self._executor = executor  # where a window's guards run, one after the other, in a single call
        self._restorer: StreamRestorer | None = pseudonyms.stream() if pseudonyms is not None else None
        self._pseudonyms = pseudonyms
        self._pending = ""
        self._context = ""  # the tail of released text, as generated (before transformation)
        self._blocked: Decision | None = None
        self._tallies = {g.name: _Tally() for g in self._guards}
        self.held_ms = 0.0  # time spent inside guards (for the benchmark)
        self._started: float | None = None  # first push: to estimate how fast text arrives
        self._arrived = 0  # characters pushed so far

    @property
    def blocked(self) -> Decision | None:
        return self._blocked

    async def push(self, text: str) -> StreamStep:
        if self._blocked is not None:
            return StreamStep("", self._blocked)
        self._pending += text
        if not self._guards:
            return StreamStep(self._restore(self._take(len(self._pending))))
        now = time.perf_counter()
        self._started = self._started or now
        self._arrived += len(text)
        if len(self._pending) < self._spec.holdback_chars + self._spec.chunk_chars - self._lead(now):
            return StreamStep("")
        return await self._release(final=False)

    def _lead(self, now: float) -> int:
        """Characters by which to start screening early so the screen's own time overlaps with generation.

        Screening a window takes a few milliseconds (NER dominates); text keeps arriving meanwhile. Starting that
        many characters before ``holdback + chunk`` are pending means the release lands about when the full
        window would have been there, instead of one screening later. It never shortens the hold-back: only text
        at least ``holdback_chars`` behind the end of the screened window is released.
        """
        assert self._started is not None
        elapsed_ms = (now - self._started) * 1000
        if elapsed_ms <= 0 or self._arrived < 2:
            return 0
        chars_per_ms = self._arrived / elapsed_ms
        return min(int(chars_per_ms * _ScreenTime.estimate_ms), self._spec.chunk_chars - 1)

    async def close(self) -> StreamStep:
        """The generation ended: screen and release everything left."""
        if self._blocked is not None:
            return StreamStep("", self._blocked)
        if not self._guards or not self._pending:
            tail = self._take(len(self._pending))
            return StreamStep(self._restore(tail) + (self._restorer.flush() if self._restorer else ""))
        step = await self._release(final=True)
        if step.blocked is None and self._restorer is not None:
            return StreamStep(step.text + self._restorer.flush())
        return step

    def decisions(self, stage: Stage = Stage.OUTPUT) -> list[Decision]:
        out = []
        for name, t in self._tallies.items():
            findings = tuple(Finding(kind, 0, 0, 1.0) for kind, n in t.counts.items() for _ in range(n))
            out.append(Decision(name, stage, t.action, findings, t.latency_ms, error=t.error, score=t.score))
        return out

    # --- internals ------------------------------------------------------------------------------------------

    def _restore(self, text: str) -> str:
        return self._restorer.push(text) if self._restorer is not None else text

    def _take(self, n: int) -> str:
        out, self._pending = self._pending[:n], self._pending[n:]
        self._context = (self._context + out)[-self._spec.context_chars :] if self._spec.context_chars else ""
        return out

    def _limit(self, final: bool) -> int:
        pending = self._pending
        if final:
            return len(pending)
        limit = len(pending) - self._spec.holdback_chars
        if len(pending) <= self._spec.max_hold_chars:
            for guard in self._guards:
                limit = min(limit, guard.tail_hold(pending))
        return max(limit, 0)

    async def _release(self, final: bool) -> StreamStep:
        limit = self._limit(final)
        if limit <= 0 and not final:
            return StreamStep("")
        window = self._context + self._pending
        offset = len(self._context)
        started = time.perf_counter()
        results = await asyncio.get_running_loop().run_in_executor(self._executor, self._inspect_all, window)
        spent_ms = (time.perf_counter() - started) * 1000
        self.held_ms += spent_ms
        _ScreenTime.observe(spent_ms)
        for guard, (inspection, _) in zip(self._guards, results, strict=True):
            if inspection is not None and guard.spans:
                limit = _cut_before_findings(inspection.findings, offset, limit)
        blocked = self._judge(results)
        if blocked is not None:
            self._blocked = blocked
            self._pending = ""
            return StreamStep("", blocked)
        if limit <= 0:
            return StreamStep("")
        segment = self._take(limit)
        for guard, (inspection, _) in zip(self._guards, results, strict=True):
            if inspection is None or not inspection.triggered or not guard.spans:
                continue
            inside = tuple(
                Finding(f.entity_type, max(f.start - offset, 0), f.end - offset, f.score)
                for f in inspection.findings
                if f.end > offset and f.end - offset <= limit
            )
            if not inside:
                continue
            tally = self._tallies[guard.name]
            tally.counts.update(f.entity_type for f in inside)
            tally.action = guard.action
            if guard.action.transforms:
                segment = guard.transform(segment, inside, self._pseudonyms)
        return StreamStep(self._restore(segment))

    def _inspect_all(self, window: str) -> list[tuple[Inspection | None, str | None]]:
        """Every guard on the window, in this (worker) thread; a failing guard is an error result, not an exception."""
        results: list[tuple[Inspection | None, str | None]] = []
        for guard in self._guards:
            start = time.perf_counter()
            try:
                results.append((guard.inspect_now(window), None))
            except Exception as exc:
                results.append((None, f"{type(exc).__name__}: guard failed"))
            self._tallies[guard.name].latency_ms += (time.perf_counter() - start) * 1000
        return results

    def _judge(self, results: list[tuple[Inspection | None, str | None]]) -> Decision | None:
        """Errors and whole-window verdicts: a block stops the stream; a flag is recorded once."""
        for guard, (inspection, error) in zip(self._guards, results, strict=True):
            tally = self._tallies[guard.name]
            if error is not None:
                tally.error = error
                if self._fail_closed:
                    tally.action = Action.BLOCK
                    return Decision(guard.name, Stage.OUTPUT, Action.BLOCK, (), tally.latency_ms, error=error)
                continue
            assert inspection is not None
            if inspection.score is not None:
                tally.score = max(tally.score or 0.0, inspection.score)
            if not inspection.triggered:
                continue
            if guard.action is Action.BLOCK:
                tally.action = Action.BLOCK
                tally.counts.update(f.entity_type for f in inspection.findings)
                return Decision(guard.name, Stage.OUTPUT, Action.BLOCK, inspection.findings, tally.latency_ms)
            if not guard.spans and tally.action is not Action.FLAG:
                tally.action = Action.FLAG
                tally.counts.update(f.entity_type for f in inspection.findings)
        return None


def _cut_before_findings(findings: tuple[Finding, ...], offset: int, limit: int) -> int:
    """Move the release point back until it cuts through no finding."""
    moved = True
    while moved:
        moved = False
        for f in findings:
            if f.start < offset + limit < f.end:
                limit = max(f.start - offset, 0)
                moved = True
    return limit
