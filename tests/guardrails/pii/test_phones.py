"""Bare phone-like identifiers and unix times are not phone numbers; real phone numbers still are."""

from __future__ import annotations

import pytest

from guardserve.guardrails import PIIConfig, PIIEngine
from guardserve.guardrails.pii.phones import drop_non_phones, is_unix_time
from guardserve.guardrails.types import Finding


def phones(engine: PIIEngine, text: str) -> list[str]:
    return [text[f.start : f.end] for f in engine.analyze(text) if f.entity_type == "PHONE_NUMBER"]


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("created_at=1723864114", "1723864114", True),
        ("epoch 1702307555123 ms", "1702307555123", True),
        ("value 2125551234", "2125551234", False),  # a New York number, not in the epoch range
        ("value 999999999", "999999999", False),  # 9 digits: no unix time of this century
        ("value 17238641140", "1723864114", False),  # part of a longer digit run
    ],
)
def test_unix_times_are_whole_10_or_13_digit_runs_in_range(text: str, value: str, expected: bool) -> None:
    start = text.index(value)
    assert is_unix_time(text, start, start + len(value)) is expected


@pytest.mark.parametrize(
    "text",
    [
        '{"id":"fb-1","created":1796208207,"model":"m"}',
        "The fixture expects epoch 1654506382 in UTC.",
        "Invoice ORD-2024-504346: 227.85 EUR, paid.",
        "Lot 75-8838-4182 expires soon.",
        "Cart total 41.17 for 3 items (06-3652-3595, K491751).",
        "Ship SKU 212-555-0199 today.",
        "Tracking number 212 555 0199 is late.",
        "Build 0171 3225500 failed.",
    ],
)
def test_identifiers_and_unix_times_are_not_phones(pii_patterns: PIIEngine, text: str) -> None:
    assert phones(pii_patterns, text) == []


@pytest.mark.parametrize(
    "text",
    [
        "Call me on 212-555-0199 tomorrow.",
        "Order questions? Phone 212-555-0199.",  # a phone word wins over an identifier word
        "Order status: +44 20 7946 0958 is the desk.",  # an international prefix is a phone
        "Emergency contact: (0161) 434 0319",
    ],
)
def test_phone_numbers_stay_phones(pii_patterns: PIIEngine, text: str) -> None:
    assert phones(pii_patterns, text) != []


def test_the_negative_words_are_configurable() -> None:
    text = "widget 212-555-0199"
    finding = Finding("PHONE_NUMBER", 7, 19, 0.4)
    assert drop_non_phones(text, [finding]) == [finding]
    assert drop_non_phones(text, [finding], negative=("widget",)) == []
    assert PIIConfig(phone_negative_context=("widget",)).phone_negative_context == ("widget",)
