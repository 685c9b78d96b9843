"""Screen streamed output before any of it leaves: a rolling hold-back buffer (after NeMo Guardrails' RollingBuffer).

New text accumulates in *pending*. Once there is enough (``chunk_chars`` beyond the ``holdback_chars`` tail — started
a little early, by as many characters as arrive during one screening, so the guards' own time overlaps with
generation), the guards inspect a window = the last ``context_chars`` of already-released text + all of pending (span
guards, whose NER is the cost, only the last ``span_context_chars`` of it, back to a word start), and a prefix of
pending is released:

* never the newest ``holdback_chars`` (more text may change what the window means);
* never from where a guard says a match might be starting (a word still being written, a run of digits) — this is
  what keeps an e-mail or a card number split across chunks from leaking piecemeal;
* never through the middle of a finding: the cut moves back to the finding's start (only ever back).

A run with no break longer than ``max_hold_chars`` is released anyway (screened), so the hold stays bounded: findings
may then pull the cut back only so far, and a finding the cut goes through is transformed on each side of it. A
finding that starts in already-released text (the window's context) cannot be recalled: the part still pending is
held until the finding ends inside the released prefix, and transformed there.

Transforming guards (PII) rewrite their findings inside the released prefix; blocking guards (toxicity) judge the
whole window, so a toxic phrase straddling the cut is seen before either half is sent. A window's guards and their
transforms run one after the other in a single worker-thread call (no thread hops, no guards contending for the GIL;
nothing of it on the event loop), within ``window_timeout_s``: a call that overruns is a guard error (the policy's
``on_error``), and the stream submits nothing more while it still runs. When the generation ends, everything left is
screened and released. After a block nothing more is released.

Pseudonym placeholders produced at the input stage are restored last (:class:`~guardserve.guardrails.pii.pseudonyms
.StreamRestorer`), so the caller reads the original values and no placeholder is ever split.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from guardserve.guardrails.guards import Guard, Inspection, shifted
from guardserve.guardrails.pii.pseudonyms import Pseudonymizer, StreamRestorer
from guardserve.guardrails.policy import StreamSpec
from guardserve.guardrails.types import Action, Decision, Finding, Stage


@dataclass(frozen=True)
class StreamStep:
    text: str  # safe to send now (may be empty)
    blocked: Decision | None = None


@dataclass(frozen=True)
class _Screened:
    """One window, screened in the worker: what each guard said, where to cut, and the text to release."""

    results: list[tuple[Inspection | None, str | None]]  # per guard: its inspection, or the error it raised
    latency_ms: list[float]  # per guard
    limit: int  # characters of pending to release (cut back before findings)
    segment: str  # those characters, transformed
    completed: list[tuple[Finding, ...]]  # per guard: findings ending inside the segment (counted once, there)
    touched: list[bool]  # per guard: some finding lies in the segment


class _WorkerCall:
    """A window's screening handed to a worker thread. One that overruns its deadline cannot be stopped: it is
    abandoned (still queued, it returns at once when it starts) and its stream submits nothing more until it has
    finished, so a stuck guard holds at most one worker per stream."""

    def __init__(self, job: Callable[[_WorkerCall], _Screened]) -> None:
        self._job = job
        self.abandoned = False
        self.finished = False
        self.current: str | None = None  # the guard running now: the one named if the call overruns

    def __call__(self) -> _Screened | None:
        try:
            return None if self.abandoned else self._job(self)
        finally:
            self.finished = True


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
    lead_always = False  # start screening early on every window, not only the first (see _lead; benchmark only)

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
        self._released = False  # some text has been released (the early start is for the first release only)
        self._overdue: _WorkerCall | None = None  # a screening that overran its deadline (may still be running)

    @property
    def blocked(self) -> Decision | None:
        return self._blocked

    @property
    def held_chars(self) -> int:
        """Characters received and not yet released (none after a block)."""
        return len(self._pending)

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

        Only until the first release (time to first token): later windows wait for a full chunk. An early start
        on every window made a loaded process, whose screenings take long, screen after nearly every token and
        release a character or two per window: NER over each character ten times and more, just when CPU was
        short. Once text flows, a chunk arriving one screening (a few ms) later is not noticeable.
        """
        assert self._started is not None
        if self._released and not self.lead_always:
            return 0
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

    def _floor(self, limit: int, final: bool) -> int:
        """How far back findings may pull the cut.

        All the way while pending is within ``max_hold_chars``. Past it, only as far as leaves ``max_hold_chars -
        chunk_chars`` held: a run with no break is released (screened), so the hold, and the window every later
        screening inspects, stay bounded; a finding the cut then goes through is transformed where it lies in
        the released prefix. At the end nothing is held back.
        """
        pending = len(self._pending)
        if final:
            return limit
        if pending <= self._spec.max_hold_chars:
            return 0
        keep = max(self._spec.max_hold_chars - self._spec.chunk_chars, 0)
        return min(limit, max(pending - keep, 0))

    async def _release(self, final: bool) -> StreamStep:
        limit = self._limit(final)
        if limit <= 0 and not final:
            return StreamStep("")
        screened = await self._screen(self._context + self._pending, len(self._context), limit, final)
        if screened is None:
            return self._overran(limit)
        for guard, ms in zip(self._guards, screened.latency_ms, strict=True):
            self._tallies[guard.name].latency_ms += ms
        blocked = self._judge(screened.results)
        if blocked is not None:
            self._blocked = blocked
            self._pending = ""
            return StreamStep("", blocked)
        if screened.limit <= 0:
            return StreamStep("")
        self._take(screened.limit)
        self._released = True
        for guard, completed, touched in zip(self._guards, screened.completed, screened.touched, strict=True):
            tally = self._tallies[guard.name]
            tally.counts.update(f.entity_type for f in completed)
            if touched:
                tally.action = guard.action
        return StreamStep(self._restore(screened.segment))

    async def _screen(self, window: str, offset: int, limit: int, final: bool) -> _Screened | None:
        """One worker call screens the window, cuts and transforms (nothing of it on the event loop), within
        ``window_timeout_s``. None: it overran, or an earlier call of this stream that overran still runs (a
        worker thread cannot be stopped: the stream submits nothing more until it has finished)."""
        if self._overdue is not None and not self._overdue.finished:
            return None
        self._overdue = None
        floor = self._floor(limit, final)
        call = _WorkerCall(lambda call: self._screen_window(call, window, offset, limit, floor))
        started = time.perf_counter()
        future = asyncio.get_running_loop().run_in_executor(self._executor, call)
        try:
            done, _ = await asyncio.wait({future}, timeout=self._spec.window_timeout_s)
        except asyncio.CancelledError:  # the stream was abandoned: drop the call if it has not started
            call.abandoned = True
            future.cancel()
            raise
        spent_ms = (time.perf_counter() - started) * 1000
        self.held_ms += spent_ms
        _ScreenTime.observe(spent_ms)
        if not done:
            call.abandoned = True  # if it is still queued, it returns at once when it starts
            self._overdue = call
            self._tallies[call.current or self._guards[0].name].latency_ms += spent_ms
            return None
        return future.result()

    def _overran(self, limit: int) -> StreamStep:
        """A window's screening overran its deadline: a guard error, decided by ``on_error``. Failing closed ends
        the stream (blocked, as any guard error); failing open releases what the window would have, unscreened."""
        assert self._overdue is not None
        name = self._overdue.current or self._guards[0].name
        tally = self._tallies[name]
        tally.error = "TimeoutError: guard timed out"
        if self._fail_closed:
            tally.action = Action.BLOCK
            self._blocked = Decision(name, Stage.OUTPUT, Action.BLOCK, (), tally.latency_ms, error=tally.error)
            self._pending = ""
            return StreamStep("", self._blocked)
        return StreamStep(self._restore(self._take(limit)))

    def _screen_window(self, call: _WorkerCall, window: str, offset: int, limit: int, floor: int) -> _Screened:
        """In the worker: every guard on the window, the cut, the transforms. Reads nothing the event loop changes;
        a failing guard (inspection or transform) is an error result, not an exception."""
        results: list[tuple[Inspection | None, str | None]] = []
        latency_ms: list[float] = []
        span_start = _span_window_start(window, offset, self._spec.span_context_chars)
        for guard in self._guards:
            call.current = guard.name
            start = time.perf_counter()
            try:
                if guard.spans and span_start:  # only new text and a bounded left context (NER is the cost)
                    results.append((_shift(guard.inspect_now(window[span_start:]), span_start), None))
                else:
                    results.append((guard.inspect_now(window), None))
            except Exception as exc:
                results.append((None, f"{type(exc).__name__}: guard failed"))
            latency_ms.append((time.perf_counter() - start) * 1000)
        for guard, (inspection, _) in zip(self._guards, results, strict=True):
            if inspection is not None and guard.spans:
                limit = _cut_before_findings(inspection.findings, offset, limit, floor)
        segment = window[offset : offset + limit]
        sent = not any(  # a block discards the segment: no transform needed
            inspection is not None and inspection.triggered and guard.action is Action.BLOCK
            for guard, (inspection, _) in zip(self._guards, results, strict=True)
        )
        completed: list[tuple[Finding, ...]] = []
        touched: list[bool] = []
        for i, guard in enumerate(self._guards):
            inspection = results[i][0]
            if inspection is None or not inspection.triggered or not guard.spans:
                completed.append(())
                touched.append(False)
                continue
            inside = _clip(inspection.findings, offset, limit)
            completed.append(tuple(f for f in inspection.findings if offset < f.end <= offset + limit))
            touched.append(bool(inside))
            # an abandoned call's result is discarded: it must not touch the request's pseudonym mapping, which
            # the event loop goes on using for later windows
            if inside and sent and guard.action.transforms and not call.abandoned:
                call.current = guard.name
                start = time.perf_counter()
                try:
                    segment = guard.transform(segment, inside, self._pseudonyms)
                except Exception as exc:
                    results[i] = (None, f"{type(exc).__name__}: guard failed")
                    touched[-1] = False  # failing open sends it untransformed: never reported as masked
                latency_ms[i] += (time.perf_counter() - start) * 1000
        return _Screened(results, latency_ms, limit, segment, completed, touched)

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


def _span_window_start(window: str, offset: int, span_context: int) -> int:
    """Where span guards' part of a window starts: ``span_context`` characters of released text before ``offset``
    (pending text), moved back to the start of the word there (never before the window's start).

    Blocking guards judge the whole window (a toxic phrase straddling the cut); span guards need only enough left
    context to see an entity that runs into pending text whole, and to give NER its few tokens of context. So each
    released character goes through NER about (span_context + holdback + chunk) / chunk times instead of
    (context + holdback + chunk) / chunk (~3 instead of ~5 with the default policy).
    """
    start = max(offset - span_context, 0)
    while start > 0 and not window[start - 1].isspace():
        start -= 1
    return start


def _shift(inspection: Inspection, by: int) -> Inspection:
    """An inspection of ``window[by:]`` in the window's coordinates."""
    if not by or not inspection.findings:
        return inspection
    return dataclasses.replace(inspection, findings=tuple(shifted(f, by) for f in inspection.findings))


def _cut_before_findings(findings: Sequence[Finding], offset: int, limit: int, floor: int = 0) -> int:
    """Move the release point (``limit`` characters past ``offset``) back until it cuts through no finding, but
    never below ``floor`` and never forward.

    A finding that starts in already-released text (before ``offset``) pulls the cut to ``floor``: what was sent is
    gone; the rest is held until the finding ends inside the released prefix, and is transformed there. Every move
    goes strictly left and the cut stays >= ``floor``, so the loop ends after at most ``len(findings)`` moves. If a
    finding still crosses the result, the result is ``floor``.
    """
    floor = max(0, min(floor, limit))
    cut = limit
    moved = True
    while moved:
        moved = False
        for f in findings:
            if f.start < offset + cut < f.end:
                target = max(f.start - offset, floor)
                if target < cut:
                    cut, moved = target, True
    return cut


def _clip(findings: Sequence[Finding], offset: int, limit: int) -> tuple[Finding, ...]:
    """The parts of findings inside the released prefix, in its coordinates: one that began in released text, or
    goes on past the cut, is transformed where it lies in the prefix."""
    clipped = (Finding(f.entity_type, max(f.start - offset, 0), min(f.end - offset, limit), f.score) for f in findings)
    return tuple(f for f in clipped if f.start < f.end)
