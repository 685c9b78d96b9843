"""NER runs only over the sentences that may hold a name: which those are, and that the guard's findings are those of
whole-text NER there, at the same characters, with the model never run over the rest."""

from __future__ import annotations

import itertools

import pytest

from guardserve.guardrails import PIIConfig, PIIEngine
from guardserve.guardrails.pii.name_scope import STARTERS, may_hold_name, name_sentences, sentences


@pytest.fixture(scope="module")
def whole() -> PIIEngine:
    return PIIEngine(PIIConfig(ner_scope="whole_text"))


def test_sentences_cover_the_text_and_break_at_ends_and_lines() -> None:
    text = 'He said "stop." Then left!  Really?\n- a bullet\n\n2. Maria called… ok'
    spans = sentences(text)
    parts = [text[s:e] for s, e in spans]
    assert parts == ['He said "stop."', "Then left!", "Really?", "- a bullet", "2. Maria called…", "ok"]
    assert all(text[e:s2].strip() == "" for (_, e), (s2, _) in itertools.pairwise(spans))
    text = "Hi, I'm Maria from Berlin, request 7. Could you help? Thanks"
    assert [text[s:e] for s, e in sentences(text)] == [
        "Hi, I'm Maria from Berlin, request 7.",
        "Could you help?",
        "Thanks",
    ]


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Could you explain how a rate limiter works?", False),
        ("Sure, and I'm certain I've seen it.", False),
        ("Revert the last commit and run the tests.", False),
        ("系统提示词和用户消息有什么区别？", False),
        ("Hi, I'm Maria Gonzalez from the Berlin office.", True),
        ("Maria called this morning.", True),  # a name first: not a starter word
        ("Will called this morning.", True),  # a starter-like word that is also a given name
        ("Split is lovely in May.", True),
        ("please ask Ahmed in Cairo", True),
        ("The TLS certificate expired.", True),  # acronyms go to the model: it may call them places
        ("2. Paris is the capital", True),
    ],
)
def test_which_sentences_may_hold_a_name(sentence: str, expected: bool) -> None:
    assert may_hold_name(sentence) is expected


def test_adjacent_name_sentences_are_joined_and_the_rest_left_out() -> None:
    text = "Maria called. Then Paris replied. The build is green. Ask Omar."
    assert [text[s:e] for s, e in name_sentences(text)] == ["Maria called. Then Paris replied.", "Ask Omar."]
    assert name_sentences("How do token buckets work? Thanks.") == []
    assert name_sentences("系统提示词和用户消息有什么区别？") == []
    window = "ttings page and choose the project. Then contact Daniel Weber."  # a stream window's left edge
    assert [window[s:e] for s, e in name_sentences(window)] == ["Then contact Daniel Weber."]


def test_a_text_without_capitals_goes_to_the_model_whole() -> None:
    for text in ("i moved to berlin last year. it rains a lot", "I think i saw sarah in london"):
        assert name_sentences(text) == [(0, len(text))]


def test_lower_case_writing_keeps_its_places(pii: PIIEngine, whole: PIIEngine) -> None:
    texts = ["i met sarah in london last week", "we moved from berlin to munich in june", "ask ahmed in cairo"]
    assert pii.analyze_batch(texts) == whole.analyze_batch(texts)
    assert any(f.entity_type == "LOCATION" for f in pii.analyze(texts[1]))


def test_starter_words_are_no_names_or_cities_faker_knows() -> None:
    from faker import Faker

    known: set[str] = set()
    for locale in ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL", "tr_TR", "pl_PL"):
        for provider in Faker(locale).providers:
            for attr in ("first_names", "last_names", "first_names_male", "first_names_female", "cities"):
                values = getattr(provider, attr, None) or ()
                known |= {str(v).lower() for v in values}
    assert len(known) > 5000
    assert STARTERS & known == set()


def test_findings_equal_whole_text_ner_where_names_are(pii: PIIEngine, whole: PIIEngine) -> None:
    texts = [
        "Hi, I'm John Smith from Berlin. Could you explain how a token bucket works? Thanks a lot.",
        "The build passed on Tuesday night. Then Maria Gonzalez approved it and flew to Madrid.",
        "Please forward this to Ahmed in Cairo. It is urgent. Mail ahmed@example.com or call 212-555-0199.",
        "Dear Ana Clara Santos,\nyour parcel left Lisbon today.\nRegards",
    ]
    assert pii.analyze_batch(texts) == whole.analyze_batch(texts)
    found = pii.analyze(texts[1])
    people = [texts[1][f.start : f.end] for f in found if f.entity_type == "PERSON"]
    assert people == ["Maria Gonzalez"]  # at the right characters of the whole text


def test_no_ner_run_where_no_name_can_be_and_patterns_still_found(pii: PIIEngine) -> None:
    nlp = pii.nlp.engine
    text = "Could you reset the password for jdoe@example.com? The number is 212-555-0199, thanks."
    before = nlp.chars_processed
    found = pii.analyze(text)
    assert nlp.chars_processed == before  # the NER model read nothing
    assert {f.entity_type for f in found} == {"EMAIL_ADDRESS", "PHONE_NUMBER"}
    with_name = "Could you reset it? Maria Gonzalez asked."
    before = nlp.chars_processed
    assert [f.entity_type for f in pii.analyze(with_name)] == ["PERSON"]
    assert nlp.chars_processed - before == len("Maria Gonzalez asked.")


def test_an_unknown_scope_is_refused() -> None:
    from pydantic import ValidationError

    from guardserve.guardrails.pii.nlp import build_nlp_engine

    with pytest.raises(ValueError, match="scope"):
        build_nlp_engine(True, "everything")
    with pytest.raises(ValidationError):
        PIIConfig(ner_scope="everything")
