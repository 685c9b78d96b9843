"""A place the NER model found stays PII only where the text ties it to a person: general-knowledge places pass."""

from __future__ import annotations

import pytest

from guardserve.guardrails import PIIConfig, PIIEngine
from guardserve.guardrails.pii.places import keep_personal_places
from guardserve.guardrails.pii.pseudonyms import Pseudonymizer
from guardserve.guardrails.types import Action, Finding


def places(engine: PIIEngine, text: str) -> list[str]:
    return [text[f.start : f.end] for f in engine.analyze(text) if f.entity_type == "LOCATION"]


def at(text: str, value: str, entity: str = "LOCATION") -> Finding:
    start = text.index(value)
    return Finding(entity, start, start + len(value), 0.85)


@pytest.mark.parametrize(
    "text",
    [
        "What is the capital of France?",
        "How far is Madrid from Barcelona?",
        "Which countries border Germany?",
        "Name three rivers in Europe.",
        "Is Lake Baikal in Russia or Mongolia?",
        "How do I get a visa for Japan?",  # "do I": the generic question form
        "Can I see the Eiffel Tower from Montmartre?",
        "The Moon orbits the Earth.",
    ],
)
def test_general_knowledge_places_are_no_pii(pii: PIIEngine, text: str) -> None:
    assert places(pii, text) == []
    assert pii.transform(text, pii.analyze(text), Action.PSEUDONYMIZE, pseudonym=Pseudonymizer().placeholder) == text


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("My sister lives in Canada now.", "Canada"),
        ("We moved to Melbourne last year.", "Melbourne"),
        ("I grew up in a small village near Lisbon.", "Lisbon"),
        ("I'm flying to Oslo tomorrow, any tips?", "Oslo"),
        ("Paris is lovely; I live there.", "Paris"),  # a cue after the place
        ("Anna Schmidt will present in Vienna.", "Vienna"),  # a name in the text: the place is hers
        ("Reach me at anna@example.org, I am in Oslo this week.", "Oslo"),
    ],
)
def test_places_tied_to_a_person_are_still_pii(pii: PIIEngine, text: str, place: str) -> None:
    assert place in places(pii, text)
    screened = pii.transform(text, pii.analyze(text), Action.PSEUDONYMIZE, pseudonym=Pseudonymizer().placeholder)
    assert place not in screened and "<LOCATION_1>" in screened


def test_place_scope_all_keeps_every_model_place() -> None:
    engine = PIIEngine(PIIConfig(place_scope="all"))
    assert places(engine, "What is the capital of France?") == ["France"]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("What is the capital of Canada?", False),
        ("How can I get to Canada?", False),  # "can I": no statement about the writer
        ("I want to visit Canada.", True),
        ("Our office is in Canada.", True),
        ("country=Canada", True),  # a form label
        ("City: Canada", True),
        ("What is the largest country in Canada?", False),  # a label word without its colon is no label
        ("I live here. Canada is big.", False),  # the cue is in another sentence
        ("Canada is where I was born.", True),
    ],
)
def test_cues_labels_and_sentences(text: str, kept: bool) -> None:
    place = at(text, "Canada")
    assert keep_personal_places(text, [place], {(place.start, place.end)}) == ([place] if kept else [])


def test_an_identifying_finding_anchors_every_place_and_only_model_places_are_filtered() -> None:
    text = "Ticket from Ana Lima: what is the capital of Canada?"
    name, place = at(text, "Ana Lima", "PERSON"), at(text, "Canada")
    spans = {(place.start, place.end)}
    assert keep_personal_places(text, [name, place], spans) == [name, place]
    assert keep_personal_places(text, [name, place], spans, anchors=()) == [name]
    assert keep_personal_places(text, [place], set()) == [place]  # a cue recognizer's or a deny list's place
    assert keep_personal_places(text, [place], spans, scope="all") == [place]


def test_the_cue_words_are_configurable() -> None:
    text = "Planning a sabbatical in Canada."
    place = at(text, "Canada")
    spans = {(place.start, place.end)}
    assert keep_personal_places(text, [place], spans) == []
    assert keep_personal_places(text, [place], spans, context=("sabbatical",)) == [place]
    engine = PIIEngine(PIIConfig(place_context=("sabbatical",)))
    assert PIIConfig().place_context != engine.config.place_context


def test_the_default_policy_filters_places_and_the_strict_one_keeps_them_all() -> None:
    from guardserve.guardrails.policy import DEFAULT_POLICY_FILE, load_policies

    policies = load_policies(DEFAULT_POLICY_FILE).policies
    default, strict = policies["default"], policies["strict"]
    assert default.input.pii is not None and default.input.pii.place_scope == "personal"
    assert strict.input.pii is not None and strict.input.pii.place_scope == "all"
    assert strict.output.pii is not None and strict.output.pii.place_scope == "all"


def test_offline_scrubbers_keep_scrubbing_every_place() -> None:
    """Training data and stored feedback are scrubbed as before the rule: the gateway's prompts alone filter places."""
    from guardserve.app.feedback.scrub import PIIScrubber
    from guardserve.training.preprocess.pii import make_engine
    from guardserve.training.recipe import PIIScrubConfig

    assert make_engine(PIIScrubConfig()).config.place_scope == "all"
    scrubber = PIIScrubber(workers=1)
    try:
        assert scrubber._get_engine().config.place_scope == "all"
    finally:
        scrubber.close()
