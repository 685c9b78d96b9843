"""The PII guards against gold spans: the default policy's input guard (pseudonymize) and output guard (mask),
taken from a built :class:`~guardrails.runtime.Guardrails` so the engines are exactly the ones it serves with.

Matching, and why:

* Recall is entity-type-agnostic: a gold span counts as found when the union of the findings covers it entirely
  (whatever types they carry): what matters for privacy is that the value is transformed, not what it is called.
  A type-aware recall (covered by findings of the gold type) and a lenient any-overlap recall are reported too.
* Precision counts findings: a finding is right when it overlaps a gold span (type-aware: one of its type). Every
  finding on a hard negative is wrong. F2 weighs recall over precision (a leak costs more than a false alarm).
* Hard-negative flagged rate: hard negatives (SKUs, versions, unix times) with any finding at all.
* Fully masked: a positive text whose every gold span is covered *and* whose transformed text contains none of the
  gold values (checked on the text the guard actually produced).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guardserve.guardrails.types import Finding
from guardserve.training.guards.evaluate.metrics import Rate, f_beta

if TYPE_CHECKING:
    from guardserve.guardrails.guards import PIIGuard
    from guardserve.guardrails.runtime import Guardrails

INSPECT_BATCH = 32  # texts per worker call


@dataclass(frozen=True)
class GoldSpan:
    start: int
    end: int
    entity: str


@dataclass(frozen=True)
class PIIText:
    text: str
    spans: tuple[GoldSpan, ...]
    kind: str = "positive"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PIIText:
        text = str(row["text"])
        spans = tuple(GoldSpan(int(s["start"]), int(s["end"]), str(s["entity"])) for s in row.get("spans", []))
        for s in spans:
            if not 0 <= s.start < s.end <= len(text):
                raise ValueError(f"span {s} outside its text (length {len(text)})")
        return cls(text, spans, str(row.get("kind", "positive" if spans else "hard_negative")))

    def value(self, span: GoldSpan) -> str:
        return self.text[span.start : span.end]


def merged(intervals: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of half-open intervals, as sorted disjoint intervals (touching ones joined)."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def trimmed(text: str, span: GoldSpan) -> tuple[int, int]:
    """The span without surrounding whitespace (a gold span that takes a space along is not harder to cover)."""
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def is_covered(start: int, end: int, findings: Sequence[Finding]) -> bool:
    """``[start, end)`` lies entirely inside the union of the findings' spans."""
    return any(s <= start and end <= e for s, e in merged([(f.start, f.end) for f in findings]))


def overlaps(start: int, end: int, other_start: int, other_end: int) -> bool:
    return start < other_end and other_start < end


def leaks(transformed: str, values: Sequence[str]) -> bool:
    """Whether any gold value still appears in the transformed text (as a whole word: "Li" in "Lisbon" is no leak)."""
    return any(re.search(rf"(?<!\w){re.escape(v)}(?!\w)", transformed) for v in values if v.strip())


def pii_figures(
    records: Sequence[PIIText], findings: Sequence[Sequence[Finding]], transformed: Sequence[str]
) -> dict[str, Any]:
    """Every PII figure for one guard: ``findings[i]`` and ``transformed[i]`` are its output for ``records[i]``."""
    gold = found_any = found_typed = overlapped = 0
    per_entity: dict[str, list[int]] = {}  # entity -> [gold, covered, covered by its own type]
    predicted = right_any = right_typed = 0
    hard = hard_flagged = 0
    hard_types: Counter[str] = Counter()
    positives = covered_all = leak_free = fully_masked = 0
    for record, found, text_out in zip(records, findings, transformed, strict=True):
        predicted += len(found)
        for f in found:
            hits = [g for g in record.spans if overlaps(f.start, f.end, g.start, g.end)]
            right_any += bool(hits)
            right_typed += any(g.entity == f.entity_type for g in hits)
        if not record.spans:
            hard += 1
            hard_flagged += bool(found)
            hard_types.update(f.entity_type for f in found)
            continue
        positives += 1
        all_covered = True
        for span in record.spans:
            start, end = trimmed(record.text, span)
            covered = is_covered(start, end, found)
            typed = is_covered(start, end, [f for f in found if f.entity_type == span.entity])
            counts = per_entity.setdefault(span.entity, [0, 0, 0])
            counts[0] += 1
            counts[1] += covered
            counts[2] += typed
            gold += 1
            found_any += covered
            found_typed += typed
            overlapped += any(overlaps(start, end, f.start, f.end) for f in found)
            all_covered &= covered
        clean = not leaks(text_out, [record.value(s).strip() for s in record.spans])
        covered_all += all_covered
        leak_free += clean
        fully_masked += all_covered and clean
    recall, precision = Rate(found_any, gold), Rate(right_any, predicted)
    recall_typed, precision_typed = Rate(found_typed, gold), Rate(right_typed, predicted)
    return {
        "available": True,
        "texts": len(records),
        "positives": positives,
        "hard_negatives": hard,
        "gold_spans": gold,
        "findings": predicted,
        "recall": recall.to_dict(),
        "precision": precision.to_dict(),
        "f2": f_beta(precision.rate, recall.rate, beta=2.0),
        "recall_any_overlap": Rate(overlapped, gold).to_dict(),
        "typed": {
            "recall": recall_typed.to_dict(),
            "precision": precision_typed.to_dict(),
            "f2": f_beta(precision_typed.rate, recall_typed.rate, beta=2.0),
        },
        "per_entity": {
            entity: {"gold": g, "recall": Rate(c, g).to_dict(), "typed_recall": Rate(t, g).to_dict()}
            for entity, (g, c, t) in sorted(per_entity.items())
        },
        "hard_negative_flagged": Rate(hard_flagged, hard).to_dict(),
        "hard_negative_finding_types": dict(sorted(hard_types.items())),
        "fully_covered": Rate(covered_all, positives).to_dict(),
        "no_gold_value_left": Rate(leak_free, positives).to_dict(),
        "fully_masked": Rate(fully_masked, positives).to_dict(),
    }


def policy_pii_guards(guardrails: Guardrails) -> dict[str, PIIGuard | None]:
    """The default policy's PII guard of each stage (None where the stage has none)."""
    from guardserve.guardrails.guards import PIIGuard

    policy = guardrails.policy()
    return {
        stage: next((g for g in guards if isinstance(g, PIIGuard)), None)
        for stage, guards in (("input", policy.input_guards), ("output", policy.output_guards))
    }


async def findings_of(guard: PIIGuard, texts: Sequence[str]) -> list[list[Finding]]:
    """The guard's findings for every text (long texts in pieces, as the gateway does)."""
    out: list[list[Finding]] = []
    for start in range(0, len(texts), INSPECT_BATCH):
        for result in await guard.inspect_many(texts[start : start + INSPECT_BATCH]):
            if isinstance(result, Exception):
                raise RuntimeError("the PII guard failed during the evaluation") from result
            out.append(list(result.findings))
    return out


async def evaluate_pii(guardrails: Guardrails, records: Sequence[PIIText]) -> dict[str, Any]:
    """Figures for the input guard and the output guard (their actions applied to get the transformed texts)."""
    from guardserve.guardrails.pii.pseudonyms import Pseudonymizer

    texts = [r.text for r in records]
    cache: dict[int, list[list[Finding]]] = {}  # stages sharing one engine (the same config) are analysed once
    out: dict[str, Any] = {}
    for stage, guard in policy_pii_guards(guardrails).items():
        if guard is None:
            out[stage] = {"available": False, "reason": f"the default policy has no {stage} PII guard"}
            continue
        key = id(guard.engine)
        if key not in cache:
            cache[key] = await findings_of(guard, texts)
        found = cache[key]
        transformed = [
            guard.transform(t, tuple(f), Pseudonymizer()) if f else t for t, f in zip(texts, found, strict=True)
        ]
        out[stage] = {"action": guard.action.value, **pii_figures(records, found, transformed)}
    return out
