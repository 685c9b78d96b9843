"""Long texts analysed in pieces (review of issue 11, P1-2 and P2): the merge is O(n log n) and runs in the worker;
an entity cut by a piece end is masked whole; an entity near a boundary is found once. Real Presidio (patterns)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

import guardserve.guardrails.guards
from guardserve.guardrails.guards import PIECE_OVERLAP, PIIGuard, merge_pieces, pieces
from guardserve.guardrails.pii.config import CustomRecognizer, PatternSpec, PIIConfig
from guardserve.guardrails.pii.engine import PIIEngine
from guardserve.guardrails.pii.overlaps import resolve_overlaps
from guardserve.guardrails.types import Action, Finding

SALT = "s" * 16
FILLER = "The weather is fine today and nothing happens. "


def quadratic_resolve_overlaps(findings: list[Finding]) -> list[Finding]:
    """The reference (O(n^2)): join any two overlapping groups until none overlap; each group is named after its
    strongest member (score, then length, then the earlier start)."""
    groups: list[list[Finding]] = [[f] for f in findings if f.end > f.start]
    joined = True
    while joined:
        joined = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a_start, a_end = min(f.start for f in groups[i]), max(f.end for f in groups[i])
                b_start, b_end = min(f.start for f in groups[j]), max(f.end for f in groups[j])
                if a_start < b_end and b_start < a_end:
                    groups[i] += groups.pop(j)
                    joined = True
                    break
            if joined:
                break
    out = []
    for group in groups:
        best = max(group, key=lambda f: (f.score, f.end - f.start, -f.start, f.entity_type))
        out.append(Finding(best.entity_type, min(f.start for f in group), max(f.end for f in group), best.score))
    return sorted(out, key=lambda f: (f.start, f.end))


@st.composite
def findings(draw: st.DrawFn) -> Finding:
    start = draw(st.integers(0, 300))
    return Finding(
        draw(st.sampled_from(["EMAIL_ADDRESS", "PERSON", "PHONE_NUMBER"])),
        start,
        start + draw(st.integers(0, 40)),
        draw(st.sampled_from([0.3, 0.5, 0.85, 1.0])),  # few scores: ties, so the other keys decide
    )


@given(st.lists(findings(), max_size=60))
def test_the_fast_resolver_agrees_with_the_quadratic_one(found: list[Finding]) -> None:
    assert resolve_overlaps(found) == quadratic_resolve_overlaps(found)


@given(st.lists(findings(), max_size=60), st.integers(341, 400))  # every finding inside the piece
def test_merging_one_piece_is_resolving_it(found: list[Finding], length: int) -> None:
    assert merge_pieces([((0, length, length), found)]) == quadratic_resolve_overlaps(found)


@pytest.fixture(scope="module")
def patterns_guard(pii_patterns: PIIEngine) -> PIIGuard:
    return PIIGuard(pii_patterns, Action.MASK, executor=None, hash_salt=SALT)


def with_value_at(value: str, at: int, length: int) -> str:
    text = (FILLER * (length // len(FILLER) + 1))[:length]
    return text[: at - 1] + " " + value + " " + text[at + len(value) + 1 :]


def masked(text: str, findings: Sequence[Finding]) -> str:
    out = list(text)
    for f in findings:
        out[f.start : f.end] = "*" * (f.end - f.start)
    return "".join(out)


async def test_the_merge_of_many_findings_runs_in_the_worker(
    patterns_guard: PIIGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    merged_in: list[int] = []
    merge = guardserve.guardrails.guards.merge_pieces

    def recording(parts: Sequence[tuple[tuple[int, int, int], Sequence[Finding]]]) -> list[Finding]:
        merged_in.append(threading.get_ident())
        return merge(parts)

    monkeypatch.setattr(guardserve.guardrails.guards, "merge_pieces", recording)
    text = "a@b.io " * (32_768 // 7)  # ~4.7K e-mails: the merge the event loop used to do, quadratically
    inspection = await patterns_guard.inspect(text)
    assert merged_in and threading.get_ident() not in merged_in  # the test's thread runs the event loop
    emails = [f for f in inspection.findings if f.entity_type == "EMAIL_ADDRESS"]
    assert len(emails) == text.count("a@b.io")
    assert [text[f.start : f.end] for f in emails] == ["a@b.io"] * len(emails)


@pytest.mark.parametrize("shift", [-200, -5, 10, 127, 129, 250], ids=lambda s: f"start{s:+d}")
async def test_a_long_custom_entity_across_a_piece_end_is_masked_whole(shift: int) -> None:
    config = PIIConfig(
        ner=False, custom=(CustomRecognizer(entity="API_TOKEN", patterns=(PatternSpec(regex="[0-9a-f]{64,}"),)),)
    )
    guard = PIIGuard(PIIEngine(config), Action.MASK, executor=None, hash_salt=SALT)
    token = "deadbeefcafe" * 50  # 600 characters: longer than the overlap
    next_start = pieces(9_000)[1][0]
    at = next_start + shift  # from before the overlap (covering all of it) to inside it
    text = with_value_at(token, at, 9_000)
    assert text[at : at + len(token)] == token
    inspection = await guard.inspect(text)
    tokens = [f for f in inspection.findings if f.entity_type == "API_TOKEN"]
    assert [(f.start, f.end) for f in tokens] == [(at, at + len(token))]  # one span, the whole token
    out = guard.transform(text, inspection.findings, None)
    assert "deadbeef" not in out and "cafe" not in out and out[at : at + len(token)] == "*" * len(token)


async def test_a_long_deny_listed_value_starting_in_the_overlap_is_masked_whole() -> None:
    value = " ".join(f"codeword{n:03d}" for n in range(30))  # 359 characters
    config = PIIConfig(ner=False, deny_list={"PROJECT": (value,)})
    guard = PIIGuard(PIIEngine(config), Action.MASK, executor=None, hash_salt=SALT)
    next_start, first_end = pieces(9_000)[1][0], pieces(9_000)[0][1]
    at = next_start + 20  # seen whole only by the next piece, which does not own where it starts
    assert at + len(value) > first_end
    text = with_value_at(value, at, 9_000)
    inspection = await guard.inspect(text)
    assert [(f.entity_type, f.start, f.end) for f in inspection.findings] == [("PROJECT", at, at + len(value))]


async def test_an_email_at_every_offset_around_a_boundary_is_found_once(patterns_guard: PIIGuard) -> None:
    (_, first_end, owned), (next_start, _, _) = pieces(9_000)[:2]
    assert first_end - next_start == PIECE_OVERLAP
    address = "jane.doe@example.com"
    for at in range(next_start - 30, first_end + 10, 3):  # before, across and after the overlap and its middle
        text = with_value_at(address, at, 9_000)
        inspection = await patterns_guard.inspect(text)
        found = [(f.start, f.end) for f in inspection.findings if f.entity_type == "EMAIL_ADDRESS"]
        assert found == [(at, at + len(address))], f"e-mail at {at} (owned boundary {owned}): {found}"
        assert masked(text, inspection.findings).count("@") == 0
