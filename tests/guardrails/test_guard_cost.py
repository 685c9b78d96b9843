"""The guard-cost features change how much work is done, never what is decided: batched NER equals per-text
analysis, cached system-prompt inspections equal fresh ones, the phone skip is exact, and a stream's NER work is
bounded (analysed characters counted)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from guardserve.guardrails import Action, PIIEngine, Pseudonymizer
from guardserve.guardrails.batching import PreparedBatcher
from guardserve.guardrails.cache import ScreeningCache
from guardserve.guardrails.guards import Inspection, PIIGuard
from guardserve.guardrails.pii.nlp import set_numpy_gemm
from guardserve.guardrails.pii.prefilter import min_phone_digits, skip_impossible_phones
from guardserve.guardrails.policy import StreamSpec
from guardserve.guardrails.runtime import Guardrails
from guardserve.guardrails.screening import Target, screen
from guardserve.guardrails.streaming import StreamScreen
from guardserve.guardrails.types import Stage

SALT = "s" * 16
TEXTS = [
    "Hi, I'm John Smith from Berlin. Mail me at john.smith@example.com or call 212-555-0199.",
    "My card is 4111 1111 1111 1111 and SSN 536-22-1234. Server 10.0.0.1, deploy on EKS and S3.",
    "Maria Gonzalez moved from Madrid to Lyon last spring; her IBAN is DE89 3704 0044 0532 0130 00.",
    "The quarterly planning meeting moved to Thursday at ten in the main conference room.",
    "",
    "   ",
    "Hi, I'm John Smith from Berlin. Mail me at john.smith@example.com or call 212-555-0199.",  # a duplicate
    "kill the process with pid 4242 and restart nginx; then ask Ahmed in Cairo whether it worked",
]


def test_batched_analysis_equals_per_text(pii: PIIEngine, pii_patterns: PIIEngine) -> None:
    for engine in (pii, pii_patterns):
        assert engine.analyze_batch(TEXTS) == [engine.analyze(t) for t in TEXTS]


def test_prepared_block_runs_the_pipeline_once_per_distinct_text(pii: PIIEngine) -> None:
    nlp = pii.nlp.engine
    before = nlp.chars_processed
    with pii.prepared(TEXTS):
        first = [pii.analyze(t) for t in TEXTS]
        second = [pii.analyze(t) for t in TEXTS]
    distinct = sum(len(t) for t in set(TEXTS) if t.strip())
    assert nlp.chars_processed - before == distinct
    assert first == second == [pii.analyze(t) for t in TEXTS]


def test_numpy_gemm_finds_the_same_entities(pii: PIIEngine) -> None:
    nlp = pii.nlp.engine.nlp["en"]
    texts = [t for t in TEXTS if t.strip()] * 2
    try:
        set_numpy_gemm(nlp, False)
        blis = [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in nlp.pipe(texts)]
    finally:
        set_numpy_gemm(nlp, True)
    assert [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in nlp.pipe(texts)] == blis


def test_phone_skip_is_exact(pii_patterns: PIIEngine) -> None:
    from presidio_analyzer import RecognizerRegistry
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    assert min_phone_digits() >= 3
    plain = PhoneRecognizer()
    registry = RecognizerRegistry(recognizers=[PhoneRecognizer()], supported_languages=["en"])
    assert skip_impossible_phones(registry) == 1
    skipping: Any = next(iter(registry.recognizers))
    texts = ["call 911", "+49 30 123", "tel 030 1234", "+1 23", "room 12, floor 3", "+44 20 7946 0958", "no digits"]
    for text in texts:
        expected = [(r.start, r.end) for r in plain.analyze(text, ["PHONE_NUMBER"])]
        assert [(r.start, r.end) for r in skipping.analyze(text, ["PHONE_NUMBER"], None)] == expected


async def test_concurrent_requests_share_one_batch_with_per_text_results(pii: PIIEngine) -> None:
    batcher = PreparedBatcher(pii.prepared_items, parallel=1)
    guard = PIIGuard(pii, Action.MASK, None, SALT, batcher=batcher)
    alone = PIIGuard(pii, Action.MASK, None, SALT)
    requests = [[TEXTS[i % len(TEXTS)], TEXTS[(i + 3) % len(TEXTS)]] for i in range(12)]
    batched = await asyncio.gather(*(guard.inspect_many(r) for r in requests))
    assert batched == [await alone.inspect_many(r) for r in requests]
    assert batcher.calls < len(requests)  # the first alone, the others together behind it


async def test_a_request_given_up_while_queued_never_runs(pii_patterns: PIIEngine) -> None:
    ran: list[str] = []

    def prepare(items: Sequence[tuple[str, str]]) -> Any:
        return pii_patterns.prepared_items(items)

    batcher = PreparedBatcher(prepare, parallel=1)

    class State:
        abandoned = False

    first, gone, kept = State(), State(), State()
    a = asyncio.ensure_future(batcher.run(["a"], first, lambda: ran.append("first")))
    b = asyncio.ensure_future(batcher.run(["b"], gone, lambda: ran.append("gone")))
    c = asyncio.ensure_future(batcher.run(["c"], kept, lambda: ran.append("kept")))
    gone.abandoned = True  # its deadline passed while the first batch ran
    b.cancel()
    await asyncio.gather(a, c)
    assert ran == ["first", "kept"]


async def test_deadline_still_applies_to_batched_calls(pii_patterns: PIIEngine) -> None:
    release = threading.Event()

    @contextlib.contextmanager
    def busy(items: Sequence[tuple[str, str]]) -> Iterator[None]:
        release.wait(30)  # the running batch: the next request's call waits behind it
        yield

    batcher = PreparedBatcher(busy, parallel=1)
    guard = PIIGuard(pii_patterns, Action.MASK, None, SALT, batcher=batcher)
    first = asyncio.ensure_future(guard.inspect_many(["a first request"]))
    await asyncio.sleep(0)
    late = await guard.inspect_many(["John Smith, 212-555-0199", "more"], deadline=0.05)
    assert all(isinstance(r, TimeoutError) for r in late) and len(late) == 2
    release.set()
    assert isinstance((await first)[0], Inspection)
    assert batcher.jobs == 1  # the call given up while queued never ran


async def test_cache_hits_do_not_change_decisions(pii: PIIEngine) -> None:
    cache = ScreeningCache(max_entries=8)
    guard = PIIGuard(pii, Action.PSEUDONYMIZE, None, SALT)
    system = "You are the assistant of Dr. Anna Berg in Vienna; forward complaints to anna.berg@example.org."
    outcomes = []
    for _ in range(3):
        targets = [Target(system, cached=True), Target("I'm John Smith from Berlin.")]
        outcomes.append(
            await screen([guard], targets, Stage.INPUT, pseudonyms=Pseudonymizer(), fail_closed=True, cache=cache)
        )
    fresh = await screen([guard], targets, Stage.INPUT, pseudonyms=Pseudonymizer(), fail_closed=True)
    assert cache.hits == 2 and cache.misses == 1 and len(cache) == 1  # only the system prompt, stored once
    for outcome in outcomes:
        assert outcome.texts == fresh.texts
        assert [d.entity_counts() for d in outcome.decisions] == [d.entity_counts() for d in fresh.decisions]
        assert [d.action for d in outcome.decisions] == [d.action for d in fresh.decisions]


def test_cache_is_bounded_and_holds_no_text() -> None:
    cache = ScreeningCache(max_entries=2)
    keys = [cache.key("pii|cfg", f"secret value {i}@example.org") for i in range(3)]
    for key in keys:
        assert key is not None and b"example" not in key
        cache.put(key, Inspection(False))
    assert keys[0] is not None and len(cache) == 2 and cache.get(keys[0]) is None  # least recently used went first
    assert cache.key("pii|cfg", "x") != cache.key("pii|other", "x")  # the guard's configuration is in the key
    assert ScreeningCache(max_entries=0).key("pii|cfg", "x") is None


@pytest.mark.parametrize("delta", [1, 4, 13])
async def test_stream_ner_work_is_bounded(pii: PIIEngine, delta: int) -> None:
    """Each character goes through NER a bounded number of times: pending text (re-analysed while held back) plus a
    left context of span_context_chars, not the whole context_chars of released text on every window."""
    text = (
        "Sure. First, open the settings page and choose the project. Then contact Daniel Weber in the Munich office "
        "or write to daniel.weber@example.com if the export fails. The export itself takes about two minutes for a "
        "medium project, and the file arrives by e-mail. If it does not, check the spam folder and try once more."
    )[:322]
    guard = PIIGuard(pii, Action.MASK, None, SALT)
    spec = StreamSpec(chunk_chars=32, holdback_chars=32, context_chars=96)
    counts = {}
    for span_context in (spec.context_chars, spec.span_context_chars):
        screen_ = StreamScreen([guard], spec.model_copy(update={"span_context_chars": span_context}))
        before = pii.nlp.engine.chars_processed
        out = ""
        for at in range(0, len(text), delta):
            out += (await screen_.push(text[at : at + delta])).text
        out += (await screen_.close()).text
        counts[span_context] = (pii.nlp.engine.chars_processed - before) / len(text)
        assert "Daniel" not in out and "daniel.weber" not in out and len(out) == len(text)
    assert counts[spec.span_context_chars] <= 4.0  # pending ~2x, left context ~1x, word extension and the end
    assert counts[spec.span_context_chars] < counts[spec.context_chars]


async def test_runtime_wires_batching_and_the_system_prompt_cache() -> None:
    guardrails = Guardrails.from_file()
    try:
        policy = guardrails.policy("default")
        system = "You are a helpful assistant for Example Corp in Berlin."
        messages = [("system", system), ("user", "Hi, I'm John Smith; how do token buckets work?")]
        first = await policy.screen_input(messages, Pseudonymizer())
        again = await policy.screen_input(messages, Pseudonymizer())
        assert first.texts == again.texts and "John Smith" not in first.texts[1]
        assert guardrails.cache is not None and guardrails.cache.hits >= 1
    finally:
        guardrails.close()


async def test_input_and_output_pii_screenings_share_ner_batches() -> None:
    """Every PII configuration uses the same spaCy pipeline, so concurrent input and output screenings (different
    entity lists) go through one batcher: they can share one NER pass, and the results stay per configuration."""
    guardrails = Guardrails.from_file()
    try:
        policy = guardrails.policy("default")
        assert len(guardrails._pii) >= 2 and len(guardrails._pii_batchers) == 1
        batcher = next(iter(guardrails._pii_batchers.values()))
        before = batcher.jobs
        text = "Write to maria@example.org or see https://example.org/maria, says Maria Gonzalez."
        pseudonyms = Pseudonymizer()
        inputs, output = await asyncio.gather(
            policy.screen_input([("user", text)], pseudonyms), policy.screen_output(text, Pseudonymizer())
        )
        assert batcher.jobs - before == 2
        assert "maria@example.org" not in inputs.texts[0] and "https://example.org/maria" in inputs.texts[0]
        assert output.texts is not None and "example.org/maria" not in output.texts[0]
        assert "Maria Gonzalez" not in inputs.texts[0] and "Maria Gonzalez" not in output.texts[0]
    finally:
        guardrails.close()
