"""PERSON spans must look like names (no imperatives, units, formulas, identifiers); partial names are completed."""

from __future__ import annotations

import pytest

from guardserve.guardrails import PIIEngine
from guardserve.guardrails.pii.names import is_name_word, name_runs, shape_names
from guardserve.guardrails.types import Finding


def names(engine: PIIEngine, text: str) -> list[str]:
    return [text[f.start : f.end] for f in engine.analyze(text) if f.entity_type == "PERSON"]


@pytest.mark.parametrize(
    "word", ["Anna", "Zoë", "Jean-Luc", "Seo-yeon", "O'Brien", "Wiśniewska", "McDonald", "J.", "Li"]
)
def test_name_words(word: str) -> None:
    assert is_name_word(word)


@pytest.mark.parametrize("word", ["NaCl", "AgNO3", "Cu", "Au", "GB", "UDP", "kHz", "kg", "A-74252-B", "sha256", "the"])
def test_not_name_words(word: str) -> None:
    assert not is_name_word(word)


@pytest.mark.parametrize(
    "text",
    [
        "Revert the last commit.",
        "Convert 5 kilograms to pounds.",
        "Bill the client for 3.5 hours.",
        "Grant access to the bucket.",
        "Mark the ticket as resolved.",
        "Frank feedback from the retro.",
        "Angle ABC is 45 degrees.",
        "Balance the equation Cu + AgNO3 -> Cu(NO3)2 + Ag.",
        "Table salt is NaCl.",
        "Order A-74252-B shipped.",
        "Serial B74D-110743, firmware v3.3.7.",
        "The ThinkPad X1 Carbon ships with 32 GB of RAM.",
    ],
)
def test_no_person_in_imperatives_units_formulas_and_ids(pii: PIIEngine, text: str) -> None:
    assert names(pii, text) == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Mark Johnson approved it.", "Mark Johnson"),  # a verb as first name, with a surname
        ("Reminder: Mehmet Kaya is flying to Chile next week.", "Mehmet Kaya"),
        ("Invoice paid by Ana Clara Santos.", "Ana Clara Santos"),
        ("Meeting with Zoë Müller-Lüdenscheidt at noon.", "Zoë Müller-Lüdenscheidt"),
        ("Dear Ludwig van Beethoven, thank you.", "Ludwig van Beethoven"),
        ("Ask Grant about the budget.", "Grant"),  # first name only, not at a sentence start
        ("Customer Beatriz Silva reported a double charge.", "Beatriz Silva"),  # the label is not the name
    ],
)
def test_real_names_are_found_whole(pii: PIIEngine, text: str, name: str) -> None:
    assert name in names(pii, text)


def test_label_words_and_non_name_words_are_cut_off_a_span() -> None:
    text = "Customer Beatriz Silva 42 reported"
    found = name_runs(text, Finding("PERSON", 0, 25, 0.85))
    assert [text[f.start : f.end] for f in found] == ["Beatriz Silva"]


def test_a_location_needs_a_word_and_other_entities_are_untouched() -> None:
    text = "Upgrade to v2.8.3 on Thursday, see 10.0.0.1"
    found = [Finding("LOCATION", 11, 17, 0.85), Finding("LOCATION", 21, 29, 0.6), Finding("IP_ADDRESS", 35, 43, 0.6)]
    assert shape_names(text, found) == [Finding("IP_ADDRESS", 35, 43, 0.6)]


@pytest.mark.parametrize(
    ("text", "value", "entities"),
    [
        ("Who was the first person to walk on the Moon?", "Moon", ("PERSON",)),  # a name takes no article
        ("Through which countries does the Danube flow?", "Danube", ("PERSON",)),
        ("How often should I water an Iris plant?", "Iris", ("PERSON",)),
        ("What's 0 Kelvin in Celsius?", "Kelvin", ("PERSON", "LOCATION")),  # a unit named after a person
        ("What is 20 degrees Celsius in Fahrenheit?", "Fahrenheit", ("PERSON", "LOCATION")),
    ],
)
def test_articles_and_named_units_are_no_names(text: str, value: str, entities: tuple[str, ...]) -> None:
    start = text.index(value)
    for entity in entities:
        assert shape_names(text, [Finding(entity, start, start + len(value), 0.85)]) == []


def test_a_place_may_take_an_article() -> None:
    text = "Can I see the Eiffel Tower from here?"
    place = Finding("LOCATION", text.index("the"), text.index(" from"), 0.85)
    assert shape_names(text, [place]) == [place]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Iris Becker approved the refund.", "Iris Becker"),  # no article
        ("Ask Kelvin about the budget.", "Kelvin"),  # a unit word as a first name, no number in the sentence
        ("Kelvin Harris paid 20 dollars.", "Kelvin Harris"),  # two words: a name, number or not
    ],
)
def test_the_same_words_as_names_are_kept(text: str, value: str) -> None:
    start = text.index(value)
    finding = Finding("PERSON", start, start + len(value), 0.85)
    assert shape_names(text, [finding]) == [finding]


def test_software_names_are_allowed_but_names_beside_them_are_not(pii: PIIEngine) -> None:
    assert pii.analyze("What is a container image (like Docker)?") == []
    assert pii.analyze("My Python script crashes on Linux.") == []
    assert "Anna Schmidt" in names(pii, "Anna Schmidt maintains our Docker images.")
