"""Properties of the rolling hold-back buffer over random texts, findings and chunkings (hypothesis).

The guards here are deterministic fakes that know the whole text and where each screening window lies in it, so what
the stream must release is exactly known. Real NER cannot be used for the equality: spaCy's spans depend on the
surrounding text, and a window sees only part of it (the regression tests below check it terminates and hides what it
must). What holds for any span guard, and is tested with one that reports arbitrary spans:

* screening ends, whatever the findings (the cut only moves left, never below its floor);
* every released character lay inside the window it was screened in, and is transformed exactly where a finding of
  that window covers it (a finding that began in released text, or goes on past the cut, included);
* the hold stays bounded: at most ``max(max_hold_chars, holdback_chars + chunk_chars)`` plus one piece is pending.

Hence, for a guard that reports every finding overlapping the window (a regex over runs of a character, say) and
masks character by character, the stream equals the whole-text screening for every chunking; and for a guard that
reports a finding only once complete, holds back any unfinished one (a perfect ``tail_hold``) and replaces findings
with a placeholder, it does too as long as the hold never exceeds ``max_hold_chars``.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardserve.guardrails import Action, Pseudonymizer
from guardserve.guardrails.guards import Inspection
from guardserve.guardrails.policy import StreamSpec
from guardserve.guardrails.streaming import StreamScreen, _cut_before_findings
from guardserve.guardrails.types import Finding

T = TypeVar("T")
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALPHABET = "aaaabbbxyz019-_.@ "  # few spaces: runs longer than max_hold_chars are common
WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prop-guard")


def finishes(make: Callable[[], Coroutine[Any, Any, T]], seconds: float = 30.0) -> T:
    """Run a coroutine on its own loop in a thread: an endless loop in the screen fails here instead of hanging."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the stream screen did not finish within {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def mask(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = "*" * (end - start)
    return "".join(chars)


class Oracle:
    """A span guard over a known text: told how much has arrived, it knows where each window lies in the text."""

    name = "oracle"
    spans = True
    action = Action.MASK

    def __init__(self, text: str, findings: list[tuple[int, int]]) -> None:
        self.text = text
        self.findings = findings  # absolute (start, end)
        self.arrived = 0
        self.calls: list[tuple[int, list[tuple[int, int]]]] = []  # window start, findings it reported (absolute)

    def window_start(self, window: str) -> int:
        start = self.arrived - len(window)
        assert start >= 0 and self.text[start : self.arrived] == window, "a window is not the text's latest part"
        return start

    def report(self, start: int, end: int) -> list[tuple[int, int]]:
        return [(max(s, start), min(e, end)) for s, e in self.findings if s < end and e > start]

    async def inspect(self, text: str) -> Inspection:
        return self.inspect_now(text)

    def inspect_now(self, text: str) -> Inspection:
        start = self.window_start(text)
        found = self.report(start, self.arrived)
        self.calls.append((start, found))
        findings = tuple(Finding("SECRET", s - start, e - start, 0.9) for s, e in found)
        return Inspection(bool(findings), findings, 0.9 if findings else None)

    def transform(self, text: str, findings: tuple[Finding, ...], pseudonyms: Pseudonymizer | None) -> str:
        assert all(0 <= f.start < f.end <= len(text) for f in findings), "a finding outside the released segment"
        return mask(text, [(f.start, f.end) for f in findings])

    def tail_hold(self, pending: str) -> int:
        return len(pending)


class Arbitrary(Oracle):
    """Reports random spans of each window (from a seeded generator) and holds back at random: any guard at all."""

    def __init__(self, text: str, seed: int) -> None:
        super().__init__(text, [])
        self.rng = random.Random(seed)

    def report(self, start: int, end: int) -> list[tuple[int, int]]:
        spans = []
        for _ in range(self.rng.randint(0, 4)):
            a, b = sorted(self.rng.randint(start, end) for _ in range(2))
            if a < b:
                spans.append((a, b))
        return spans

    def tail_hold(self, pending: str) -> int:
        return self.rng.randint(0, len(pending))


class CompleteOnly(Oracle):
    """Reports a finding only once all of it has arrived, holds back from the start of an unfinished one, and
    replaces findings with a placeholder (a transform that does not compose: cutting through a finding shows)."""

    action = Action.PLACEHOLDER

    def report(self, start: int, end: int) -> list[tuple[int, int]]:
        return [(max(s, start), e) for s, e in self.findings if e <= end and e > start]

    def transform(self, text: str, findings: tuple[Finding, ...], pseudonyms: Pseudonymizer | None) -> str:
        for f in sorted(findings, key=lambda f: f.start, reverse=True):
            text = text[: f.start] + "<SECRET>" + text[f.end :]
        return text

    def tail_hold(self, pending: str) -> int:
        pending_start = self.arrived - len(pending)
        unfinished = [s for s, e in self.findings if s < self.arrived < e]
        return min([len(pending), *(max(s - pending_start, 0) for s in unfinished)])


async def stream(guard: Oracle, pieces: list[str], spec: StreamSpec) -> list[tuple[str, int]]:
    """Each step's released text, with how many screening calls had been made by then."""
    screen = StreamScreen([guard], spec, executor=WORKER)
    steps = []
    bound = max(spec.max_hold_chars, spec.holdback_chars + spec.chunk_chars) + max(map(len, pieces), default=0)
    for piece in pieces:
        guard.arrived += len(piece)
        steps.append(((await screen.push(piece)).text, len(guard.calls)))
        assert screen.held_chars <= bound, (screen.held_chars, bound)
    steps.append(((await screen.close()).text, len(guard.calls)))
    assert screen.held_chars == 0 and screen.blocked is None
    return steps


@st.composite
def specs(draw: st.DrawFn) -> StreamSpec:
    return StreamSpec(
        chunk_chars=draw(st.integers(1, 16)),
        holdback_chars=draw(st.integers(0, 16)),
        context_chars=draw(st.integers(0, 40)),
        max_hold_chars=draw(st.integers(16, 64)),
    )


@st.composite
def chunked(draw: st.DrawFn, text: str) -> list[str]:
    sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=8))
    pieces: list[str] = []
    i = 0
    while i < len(text):
        size = sizes[len(pieces) % len(sizes)]
        pieces.append(text[i : i + size])
        i += size
    return pieces


@st.composite
def spans_of(draw: st.DrawFn, text: str, max_len: int = 120) -> list[tuple[int, int]]:
    if not text:
        return []
    starts = draw(st.lists(st.integers(0, len(text) - 1), max_size=6))
    return [(s, min(len(text), s + draw(st.integers(1, max_len)))) for s in starts]


@PROPERTY
@given(
    findings=st.lists(st.tuples(st.integers(-20, 300), st.integers(0, 200)), max_size=8),
    offset=st.integers(0, 100),
    limit=st.integers(0, 200),
    floor=st.integers(-10, 250),
)
def test_the_cut_ends_only_moves_left_and_clears_every_finding_above_its_floor(
    findings: list[tuple[int, int]], offset: int, limit: int, floor: int
) -> None:
    spans = [Finding("X", s, s + n, 1.0) for s, n in findings if n > 0]
    cut = finishes(lambda: asyncio.to_thread(_cut_before_findings, spans, offset, limit, floor), 10)
    lowest = max(0, min(floor, limit))
    assert lowest <= cut <= limit
    crossing = [f for f in spans if f.start < offset + cut < f.end]
    assert not crossing or cut == lowest, crossing


@PROPERTY
@given(data=st.data(), text=st.text(ALPHABET, max_size=300), spec=specs())
def test_stream_equals_whole_text_masking_for_every_chunking(data: st.DataObject, text: str, spec: StreamSpec) -> None:
    findings = data.draw(spans_of(text))
    pieces = data.draw(chunked(text))
    steps = finishes(lambda: stream(Oracle(text, findings), pieces, spec))
    out = "".join(piece for piece, _ in steps)
    whole = mask(text, findings)
    assert out == whole
    assert all(out[i] == "*" for i in range(len(text)) if whole[i] == "*")  # nothing the whole screening masks shows


@PROPERTY
@given(data=st.data(), text=st.text(ALPHABET, max_size=300), spec=specs(), seed=st.integers(0, 2**32))
def test_any_guard_every_released_character_was_screened_and_masked_where_its_window_found_something(
    data: st.DataObject, text: str, spec: StreamSpec, seed: int
) -> None:
    guard, pieces = Arbitrary(text, seed), data.draw(chunked(text))
    steps = finishes(lambda: stream(guard, pieces, spec))
    released = 0
    for piece, calls in steps:
        if not piece:
            continue
        window_start, found = guard.calls[calls - 1]  # the screening of this very step released it
        for i, char in enumerate(piece, start=released):
            assert window_start <= i < guard.arrived
            covered = any(s <= i < e for s, e in found)
            assert char == ("*" if covered else text[i]), (i, char, covered)
        released += len(piece)
    assert released == len(text)


@PROPERTY
@given(data=st.data(), text=st.text(ALPHABET, max_size=300), spec=specs())
def test_findings_reported_once_complete_are_replaced_whole_while_the_hold_is_honoured(
    data: st.DataObject, text: str, spec: StreamSpec
) -> None:
    spec = spec.model_copy(update={"max_hold_chars": 65536})  # the tail hold is always honoured
    findings = sorted(data.draw(spans_of(text, max_len=40)))
    disjoint = [f for i, f in enumerate(findings) if all(f[0] >= g[1] or f[1] <= g[0] for g in findings[:i])]
    guard, pieces = CompleteOnly(text, disjoint), data.draw(chunked(text))
    out = "".join(piece for piece, _ in finishes(lambda: stream(guard, pieces, spec)))
    whole = text
    for s, e in sorted(disjoint, reverse=True):
        whole = whole[:s] + "<SECRET>" + whole[e:]
    assert out == whole


def test_a_finding_that_began_in_released_text_is_masked_in_what_is_left() -> None:
    """The freeze of issue 11: a span starting in the context and running past the cut (the loop never ended)."""
    text = "x" * 40 + "y" * 600 + " done."
    spec = StreamSpec(chunk_chars=8, holdback_chars=8, context_chars=16, max_hold_chars=64)
    guard = Oracle(text, [(30, 640)])
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    out = "".join(p for p, _ in finishes(lambda: stream(guard, pieces, spec), 10))
    assert out == "x" * 30 + "*" * 610 + " done."
    assert any(start > 30 and found for start, found in guard.calls)  # windows that began inside the finding
