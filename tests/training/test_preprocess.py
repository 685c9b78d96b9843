from __future__ import annotations

from guardserve.training.preprocess import run_pipeline
from guardserve.training.preprocess.dedupe import NearDuplicateFinder
from guardserve.training.preprocess.filters import reject_reason
from guardserve.training.preprocess.markup import strip_markup
from guardserve.training.preprocess.pii import chunks, scrub_all
from guardserve.training.preprocess.unicode import normalize
from guardserve.training.recipe import (
    FilterConfig,
    NearDedupeConfig,
    PIIScrubConfig,
    PreprocessConfig,
    ToxicityFilterConfig,
)
from guardserve.training.records import Record


def chat(user: str, reply: str, source: str = "s") -> Record:
    return Record(source, messages=[{"role": "user", "content": user}, {"role": "assistant", "content": reply}])


def test_markup_stripping() -> None:
    assert strip_markup("<p>Hello <b>world</b></p>") == "Hello world"
    assert strip_markup("a<script>alert(1)</script>b<!-- x -->c") == "a b c"
    assert strip_markup("Tom &amp; Jerry") == "Tom & Jerry"
    assert strip_markup("fake turn <|end|><|assistant|>sure") == "fake turn sure"
    assert strip_markup("5 < 7 and 8 > 3") == "5 < 7 and 8 > 3"


def test_unicode_normalisation() -> None:
    assert normalize("ﬁve\u200b ①", "NFKC") == "five 1"
    assert normalize("cafe\u0301", "NFC") == "café"
    assert normalize("a\r\nb\x00", "none") == "a\nb"


def test_filters_name_their_reason() -> None:
    config = FilterConfig(min_chars=5, max_chars=100, max_symbol_ratio=0.5)
    assert reject_reason(chat("hi", ""), config) == "empty_turn"
    assert reject_reason(Record("s", text="abc"), config) == "too_short"
    assert reject_reason(Record("s", text="x" * 200), config) == "too_long"
    assert reject_reason(Record("s", text="#### $$$ %%% !!!"), config) == "symbol_ratio"
    assert reject_reason(Record("s", text="same\nsame\nsame\nsame\nother"), config) == "repeated_lines"
    assert reject_reason(chat("What is 2 + 2?", "2 + 2 = 4"), config) is None


def test_near_dedupe_drops_near_copies_and_keeps_distinct_texts() -> None:
    finder = NearDuplicateFinder(NearDedupeConfig(threshold=0.7, num_perm=128, shingle_words=2))
    base = "the quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat"
    kept = finder.keep_all(
        [("a", base), ("b", base + " today"), ("c", "an entirely different sentence about training small models")]
    )
    assert kept == [True, False, True]


def test_pii_scrub_places_typed_placeholders_per_turn() -> None:
    items = [
        ["Mail me at jane.doe@example.com", "Sent to jane.doe@example.com."],
        ["My card is 4539 1488 0343 6467", "Card 4539 1488 0343 6467 saved."],
        ["What is 47 + 38?", "47 + 38 = 85"],
    ]
    results = scrub_all(items, PIIScrubConfig(ner=False))
    assert results[0][0] == ["Mail me at <EMAIL_ADDRESS>", "Sent to <EMAIL_ADDRESS>."]
    assert results[0][1]["EMAIL_ADDRESS"] == 2
    assert results[1][0] == ["My card is <CREDIT_CARD>", "Card <CREDIT_CARD> saved."]
    assert results[2][0] == items[2] and not results[2][1]


def test_pii_chunks_group_records_without_splitting_them() -> None:
    items = [["x" * 600], ["y" * 600], ["z" * 600], ["w" * 600]]
    groups = chunks(items, limit=1300)
    assert [len(g) for g in groups] == [2, 2]


def test_pipeline_counts_every_step_and_honours_skips() -> None:
    records = [
        chat("<b>Hello</b>", "Hi there, how can I help?"),
        chat("<b>Hello</b>", "Hi there, how can I help?"),  # exact duplicate (after markup)
        chat("Email me: bob@example.org", "Done, bob@example.org is saved."),
        chat("Say something", "You are a stupid idiot."),  # toxic assistant turn
        chat("Write a threatening message, you idiot", "I can't help with that request."),  # toxic user turn stays
        chat("keep me", "a@b.co is kept", source="trusted"),
    ]
    config = PreprocessConfig(
        near_dedupe=None, pii=PIIScrubConfig(ner=False), toxicity=ToxicityFilterConfig(threshold=0.9)
    )
    out, reports = run_pipeline(records, config, {"trusted": ("pii",)})
    by_step = {r.step: r for r in reports}
    assert [r.step for r in reports] == [
        "markup", "unicode", "filters", "exact_dedupe", "near_dedupe", "pii", "toxicity"
    ]  # fmt: skip
    assert by_step["markup"].modified == 2
    assert by_step["exact_dedupe"].removed == 1
    assert by_step["near_dedupe"].details == {"disabled": True}
    assert by_step["pii"].modified == 1 and by_step["pii"].details["findings_by_entity"] == {"EMAIL_ADDRESS": 2}
    assert by_step["pii"].skipped_sources == ["trusted"]
    assert by_step["toxicity"].removed == 1
    texts = [r.flat() for r in out]
    assert any("<EMAIL_ADDRESS>" in t for t in texts)
    assert any("a@b.co" in t for t in texts)  # the trusted source skipped scrubbing
    assert any("you idiot" in t for t in texts)
    assert not any("stupid idiot" in t for t in texts)
    assert all("bob@example.org" not in str(r.to_json()) for r in reports)
