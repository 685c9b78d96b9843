"""Overlapping findings are one masked span: the union, named after the strongest."""

from __future__ import annotations

from guardserve.guardrails import Action, PIIEngine
from guardserve.guardrails.pii.overlaps import resolve_overlaps
from guardserve.guardrails.types import Finding


def test_overlapping_findings_become_their_union_named_after_the_strongest() -> None:
    ip = Finding("IP_ADDRESS", 10, 46, 0.6)
    person = Finding("PERSON", 30, 50, 0.85)  # reaches past the address
    assert resolve_overlaps([ip, person]) == [Finding("PERSON", 10, 50, 0.85)]


def test_a_chain_of_overlaps_is_one_span_and_touching_spans_stay_apart() -> None:
    found = [Finding("A", 0, 5, 0.5), Finding("B", 4, 9, 0.9), Finding("C", 8, 12, 0.5), Finding("D", 12, 14, 1.0)]
    assert resolve_overlaps(found) == [Finding("B", 0, 12, 0.9), Finding("D", 12, 14, 1.0)]


def test_equal_scores_prefer_the_longer_span_and_empty_spans_are_dropped() -> None:
    found = [Finding("PERSON", 3, 8, 0.85), Finding("LOCATION", 0, 10, 0.85), Finding("X", 20, 20, 1.0)]
    assert resolve_overlaps(found) == [Finding("LOCATION", 0, 10, 0.85)]


def test_an_ipv6_address_with_a_model_span_inside_is_masked_whole(pii: PIIEngine) -> None:
    text = "Login spikes from fe80:0:be40:5b40:d80b:6a0a:442a:bf55 today."
    masked = pii.transform(text, pii.analyze(text), Action.MASK)
    assert "fe80" not in masked and "bf55" not in masked and masked.startswith("Login spikes from *")
