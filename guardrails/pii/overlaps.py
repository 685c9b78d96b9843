"""Overlapping findings become one span: the union of their extents, named after the strongest of them.

Dropping the weaker of two overlapping findings leaves the part of the value only it covered in clear text (an IPv6
address with a NER "LOCATION" on its first groups was masked up to the NER span's end). The union masks the whole.
"""

from __future__ import annotations

from collections.abc import Iterable

from guardserve.guardrails.types import Finding


def _strength(f: Finding) -> tuple[float, int, int, str]:
    """Higher score, then the longer span, then the earlier one (then the type's name: a total order)."""
    return (f.score, f.end - f.start, -f.start, f.entity_type)


def resolve_overlaps(findings: Iterable[Finding]) -> list[Finding]:
    """Non-overlapping findings, in text order: every group of (transitively) overlapping findings becomes one
    finding spanning their union, with the entity type and score of the strongest (higher score, then the longer
    span, then the earlier one). Spans that only touch stay apart; empty spans mask nothing and are dropped.
    O(n log n)."""
    out: list[Finding] = []
    group: list[Finding] = []
    end = -1
    for f in sorted((f for f in findings if f.end > f.start), key=lambda f: (f.start, f.end)):
        if group and f.start < end:
            group.append(f)
            end = max(end, f.end)
            continue
        if group:
            out.append(_union(group, end))
        group, end = [f], f.end
    if group:
        out.append(_union(group, end))
    return out


def _union(group: list[Finding], end: int) -> Finding:
    best = max(group, key=_strength)
    return Finding(best.entity_type, group[0].start, end, best.score)
