"""GuardServe's recognizers: 2-series Mastercard numbers, street addresses (one span each), cued names, URLs."""

from __future__ import annotations

import pytest

from guardserve.guardrails import PIIConfig, PIIEngine


def values(engine: PIIEngine, text: str, entity: str) -> list[str]:
    return [text[f.start : f.end] for f in engine.analyze(text) if f.entity_type == entity]


@pytest.mark.parametrize("number", ["2221 0000 0000 0009", "2720-9900-0000-0007", "2223000048400011"])
def test_two_series_mastercard_numbers_are_cards(pii_patterns: PIIEngine, number: str) -> None:
    assert values(pii_patterns, f"New card: {number}, exp 09/28.", "CREDIT_CARD") == [number]


@pytest.mark.parametrize("number", ["2221 0000 0000 0008", "2220 0000 0000 0000", "2721 0000 0000 0004"])
def test_the_luhn_check_and_the_prefix_range_still_hold(pii_patterns: PIIEngine, number: str) -> None:
    # bad checksum / 2220 and 2721 are outside 2221-2720 (each has a valid Luhn digit but no card prefix)
    assert values(pii_patterns, f"New card: {number}, exp 09/28.", "CREDIT_CARD") == []


@pytest.mark.parametrize(
    "address",
    [
        "1600 Pennsylvania Ave NW, Washington, DC 20500",
        "9291 Elm Dr, Apt 15D, Raleigh, NC 27633",
        "221B Baker Street, London NW1 6XE",
        "62 Queens Road, York YO1 7HH",
        "Bahnhofstraße 44, 20095 Hamburg",
        "Am Markt 103a, 10115 Berlin",
        "Lindenweg 9, 60311 Frankfurt am Main",
        "7 bis rue de la République, 75011 Paris",
        "85 chemin des Vignes, 44000 Nantes",
        "103 Church Lane",
    ],
)
def test_a_street_address_is_one_span_with_its_number(pii_patterns: PIIEngine, address: str) -> None:
    text = f"Please ship it to {address}."
    assert values(pii_patterns, text, "STREET_ADDRESS") == [address]


def test_the_model_spans_inside_an_address_are_merged_into_it(pii: PIIEngine) -> None:
    text = "Home: 350 Fifth Avenue, New York, NY 10118"
    found = pii.analyze(text)
    assert [(f.entity_type, text[f.start : f.end]) for f in found] == [
        ("STREET_ADDRESS", "350 Fifth Avenue, New York, NY 10118")
    ]


@pytest.mark.parametrize(
    "text", ["Jump to line 88.", "Upgrade to v2.8.3 now.", "Bring 5 apples.", "Im Jahr 2024 war alles gut."]
)
def test_no_address_in_numbers_and_sentences(pii_patterns: PIIEngine, text: str) -> None:
    assert values(pii_patterns, text, "STREET_ADDRESS") == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('holder="Yui Watanabe"', "Yui Watanabe"),
        ("Dear Amara Okafor,", "Amara Okafor"),
        ("Thanks Siobhán! See you.", "Siobhán"),
        ("Who is in? Seo-yeon and I are driving.", "Seo-yeon"),
        ("id,name\n1042,James Parker,x@example.com", "James Parker"),
    ],
)
def test_names_after_or_before_a_cue(pii: PIIEngine, text: str, name: str) -> None:
    assert name in values(pii, text, "PERSON")


def test_url_is_an_answer_entity_of_the_default_policy() -> None:
    from guardserve.guardrails.policy import load_policies

    default = load_policies().policies["default"]
    assert default.output is not None and default.output.pii is not None
    assert "URL" in default.output.pii.entities
    engine = PIIEngine(PIIConfig(entities=("URL",), ner=False))
    text = "Docs are at https://wiki.example.org/team/handbook today."
    assert values(engine, text, "URL") == ["https://wiki.example.org/team/handbook"]
