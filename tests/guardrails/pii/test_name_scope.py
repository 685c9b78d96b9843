"""NER runs only over the sentences that may hold a name: which those are, and that the guard's findings are those of
whole-text NER there, at the same characters, with the model never run over the rest."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from guardserve.guardrails import PIIConfig, PIIEngine
from guardserve.guardrails.pii.name_scope import STARTERS, may_hold_name, name_sentences, sentences

LOCALES = (
    "en_US", "en_GB", "en_AU", "en_IN", "de_DE", "fr_FR", "fr_CA", "es_ES", "es_MX", "it_IT", "pt_BR", "pt_PT",
    "nl_NL", "tr_TR", "pl_PL", "sv_SE", "da_DK", "no_NO", "fi_FI", "cs_CZ", "hu_HU", "ro_RO", "ru_RU", "el_GR",
    "ja_JP", "zh_CN", "ar_AA", "hi_IN", "id_ID", "vi_VN",
)  # fmt: skip


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


def test_name_sentences_are_widened_by_context_words_and_joined() -> None:
    text = "Maria called. Then Paris replied. The build is green and all the tests pass again. Ask Omar."
    assert [text[s:e] for s, e in name_sentences(text, context_words=0)] == [
        "Maria called.",
        "Then Paris replied.",
        "Ask Omar.",
    ]
    assert [text[s:e] for s, e in name_sentences(text)] == [
        "Maria called. Then Paris replied. The build is green",
        "the tests pass again. Ask Omar.",
    ]
    plain = "How do token buckets work? Thanks."  # no capital but sentence starts: casing says nothing
    assert name_sentences(plain) == [(0, len(plain))]
    assert name_sentences("系统提示词和用户消息有什么区别？") == []
    window = "ttings page and choose the project. Then contact Daniel Weber."  # a stream window's left edge
    assert [window[s:e] for s, e in name_sentences(window)] == ["and choose the project. Then contact Daniel Weber."]


@pytest.mark.parametrize(
    "text",
    ["i moved to berlin last year. it rains a lot", "I think i saw sarah in london", "My friend lives in berlin."],
)
def test_a_text_whose_casing_says_nothing_goes_to_the_model_whole(text: str) -> None:
    assert name_sentences(text) == [(0, len(text))]


def test_faker_texts_find_what_whole_text_ner_finds(pii: PIIEngine, whole: PIIEngine) -> None:
    """Seeded texts mixing filler sentences with names and cities of seven locales (a reviewer's fuzz, which found
    the missing context): every finding of the whole-text run, at the same characters."""
    import random

    from faker import Faker

    rng = random.Random(1)
    fakers = [Faker(locale) for locale in ("en_US", "de_DE", "fr_FR", "es_ES", "tr_TR", "vi_VN", "sv_SE")]
    for faker in fakers:
        faker.seed_instance(1)
    filler = ["Thanks.", "Sure, that works.", "Could you check the logs?", "Please help me with this.", "Yes.",
              "Sorry for the delay.", "Can you fix it?", "Regards,", "Hi,", "Hello!", "Ok."]  # fmt: skip

    def named(f: Faker) -> str:
        name, city = f.name(), f.city()
        first, last = f.first_name(), name.split()[-1]
        return rng.choice([f"{name} will call.", f"Ask {name}.", name, f"I met {name} in {city}.",
                           f"She moved to {city}.", f"{first} said hi.", f"{last} agreed.", f"Call {first} tomorrow.",
                           f"{city} is nice.", f"My colleague {name} lives in {city}."])  # fmt: skip

    texts = []
    for _ in range(120):
        faker = rng.choice(fakers)
        parts = [rng.choice(filler) if rng.random() < 0.5 else named(faker) for _ in range(rng.randint(2, 5))]
        texts.append("".join(p + rng.choice([" ", "\n", " ", "\n\n"]) for p in parts).strip())
    assert pii.analyze_batch(texts) == whole.analyze_batch(texts)


def test_lower_case_writing_keeps_its_places(pii: PIIEngine, whole: PIIEngine) -> None:
    texts = [
        "i met sarah in london last week",
        "we moved from berlin to munich in june",
        "ask ahmed in cairo",
        "Yesterday i flew from london to paris.",
        "Please book a table in rome for friday.",
    ]
    assert pii.analyze_batch(texts) == whole.analyze_batch(texts)
    assert any(f.entity_type == "LOCATION" for f in pii.analyze(texts[1]))


def test_starter_words_are_no_names_or_cities_faker_knows() -> None:
    from faker import Faker

    known: set[str] = set()
    for locale in LOCALES:
        for provider in Faker(locale).providers:
            for attr in ("first_names", "last_names", "first_names_male", "first_names_female", "cities"):
                values = getattr(provider, attr, None) or ()
                known |= {str(v).lower() for v in values}
    assert len(known) > 20000
    assert STARTERS & known == set()


def test_findings_equal_whole_text_ner_where_names_are(pii: PIIEngine, whole: PIIEngine) -> None:
    texts = [
        "Hi, I'm John Smith from Berlin. Could you explain how a token bucket works? Thanks a lot.",
        "The build passed on Tuesday night. Then Maria Gonzalez approved it and flew to Madrid.",
        "Please forward this to Ahmed in Cairo. It is urgent. Mail ahmed@example.com or call 212-555-0199.",
        "Dear Ana Clara Santos,\nyour parcel left Lisbon today.\nRegards",
        "Thanks. Ávila is nice. Yes.",  # alone, "Ávila is nice." is a nationality to the model
        "Sorry for the delay. Call Martine tomorrow.",
        "My friend lives in berlin and works at a bank.",
    ]
    assert pii.analyze_batch(texts) == whole.analyze_batch(texts)
    found = pii.analyze(texts[1])
    people = [texts[1][f.start : f.end] for f in found if f.entity_type == "PERSON"]
    assert people == ["Maria Gonzalez"]  # at the right characters of the whole text


def test_the_model_reads_only_the_name_spans_and_patterns_still_read_everything(pii: PIIEngine) -> None:
    nlp = pii.nlp.engine
    text = (
        "Ask Omar about the outage. Could you reset the password for the shared account today? The reset form "
        "keeps failing on every try, so please write to jdoe@example.com or call 212-555-0199."
    )
    (start, end), *rest = name_sentences(text)
    assert not rest and text[start:end] == "Ask Omar about the outage. Could you reset the"
    before = nlp.chars_processed
    found = pii.analyze(text)
    assert nlp.chars_processed - before == end - start  # the NER model read only that span
    assert [f.entity_type for f in found] == ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER"]
    before = nlp.chars_processed
    pii.analyze("系统提示词和用户消息有什么区别？")
    assert nlp.chars_processed == before  # a script without case: nothing for the model


def test_an_unknown_scope_is_refused() -> None:
    from pydantic import ValidationError

    engine = PIIEngine(PIIConfig())
    engine.scope = "everything"
    with pytest.raises(ValueError, match="scope"):
        engine.analyze("Maria lives in Berlin.")
    with pytest.raises(ValidationError):
        PIIConfig(ner_scope="everything")


# --- "cased_text": the output guards' scope (text a model wrote capitalises names) -------------------------------


@pytest.fixture(scope="module")
def cased() -> PIIEngine:
    return PIIEngine(PIIConfig(ner_scope="cased_text"))


def test_cased_text_trusts_casing_where_name_sentences_does_not() -> None:
    text = "The office is in berlin. Sure, first open the settings page."
    assert name_sentences(text) == [(0, len(text))]  # a prompt: the model still finds "berlin"
    assert name_sentences(text, trust_casing=True) == []  # an answer: no capital past a sentence start, no name
    text = "Sure. Daniel will call you back. The export takes two minutes and arrives by e-mail."
    (start, end), *rest = name_sentences(text, trust_casing=True)
    assert not rest and text[start:end] == "Sure. Daniel will call you back. The export takes two"


def test_cased_text_finds_the_names_of_a_cased_answer_and_skips_the_rest(cased: PIIEngine, whole: PIIEngine) -> None:
    answers = [
        "Sure. First, open the settings page. Then contact Daniel Weber in the Munich office or write to "
        "daniel.weber@example.com if the export fails.",
        "Marie Curie was a physicist and chemist born in Warsaw. She won two Nobel Prizes.",
        "Ines lives in Lisbon with her grandmother. Every morning she walks to the harbour.",
        "Here is a short note: thank you for helping with the move, it made a big difference.",
    ]
    assert cased.analyze_batch(answers) == whole.analyze_batch(answers)
    nlp = cased.nlp.engine
    before = nlp.chars_processed
    assert cased.analyze(answers[3]) == []
    assert nlp.chars_processed == before  # nothing capitalised but its first word, "Here": the model never ran


async def test_input_and_output_texts_share_one_batch_each_under_its_scope(pii: PIIEngine, cased: PIIEngine) -> None:
    from guardserve.guardrails.batching import PreparedBatcher
    from guardserve.guardrails.guards import PIIGuard
    from guardserve.guardrails.types import Action

    assert pii.nlp.engine is cased.nlp.engine  # one NLP engine, one batcher, two scopes
    batcher = PreparedBatcher(pii.prepared_items, parallel=1)
    guard_in = PIIGuard(pii, Action.MASK, None, "salt", batcher=batcher)
    guard_out = PIIGuard(cased, Action.MASK, None, "salt", batcher=batcher)
    text = "ok so i moved to berlin last year and love it."  # the same text as a prompt and as an answer
    prompt, answer = await asyncio.gather(guard_in.inspect_many([text]), guard_out.inspect_many([text]))
    assert prompt == [await PIIGuard(pii, Action.MASK, None, "salt").inspect(text)]
    assert answer == [await PIIGuard(cased, Action.MASK, None, "salt").inspect(text)]
    assert prompt != answer  # the prompt's lower-case place is found; the answer's casing says there is no name


def test_the_default_policy_reads_answers_as_cased_text() -> None:
    from guardserve.guardrails.policy import load_policies

    default = load_policies().policies["default"]
    assert default.input.pii is not None and default.input.pii.ner_scope == "name_sentences"
    assert default.output.pii is not None and default.output.pii.ner_scope == "cased_text"
