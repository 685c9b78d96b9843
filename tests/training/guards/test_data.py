"""The guard training data: deterministic, deduplicated, balanced, multilingual for injection, fair across identity
terms, and full of benign look-alikes."""

from __future__ import annotations

import builtins
import io
import re
from collections import Counter
from functools import cache

import pytest

from guardserve.training.guards.data import KINDS, TASKS, Example, build, identity_counts
from guardserve.training.guards.data.example import norm

INJECTION_LANGS = ("en", "de", "fr", "es", "zh")


@cache
def _built(task: str, seed: int = 0, identity_balance: bool = True) -> tuple[Example, ...]:
    return tuple(build(task, seed, identity_balance=identity_balance))


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_data_and_another_seed_other_data(task: str) -> None:
    assert list(_built(task)) == build(task, 0)
    assert _built(task, 1) != _built(task, 0)


@pytest.mark.parametrize("task", TASKS)
def test_examples_are_well_formed_and_deduplicated(task: str) -> None:
    examples = _built(task)
    assert all(isinstance(ex, Example) and ex.text.strip() and ex.label in (0, 1) and ex.lang for ex in examples)
    keys = Counter(norm(ex.text) for ex in examples)
    assert keys.most_common(1)[0][1] == 1


@pytest.mark.parametrize("identity_balance", [True, False])
@pytest.mark.parametrize("task", TASKS)
def test_a_few_thousand_examples_with_labels_at_most_one_to_two(task: str, identity_balance: bool) -> None:
    labels = Counter(ex.label for ex in _built(task, 0, identity_balance))
    assert 3000 <= labels.total() <= 16000  # about 1,200 of them everyday text (everyday.py), 1,000-5,000 broad.py
    assert 0.5 <= labels[1] / labels[0] <= 2.0


@pytest.mark.parametrize("task", TASKS)
def test_every_kind_is_present_and_kinds_agree_with_labels(task: str) -> None:
    kinds = Counter(ex.kind for ex in _built(task))
    assert [kind for kind in KINDS[task] if kinds[kind] == 0] == []
    for ex in _built(task):
        assert (ex.label == 0) == ex.kind.startswith(("benign", "other_")), ex


def test_injection_covers_five_languages_with_both_labels_and_more_besides() -> None:
    by_lang = Counter((ex.lang, ex.label) for ex in _built("prompt_injection"))
    for lang in INJECTION_LANGS:
        assert by_lang[(lang, 1)] >= 100 and by_lang[(lang, 0)] >= 100, lang
    both = {lang for lang, _ in by_lang if by_lang[(lang, 0)] and by_lang[(lang, 1)]}
    assert len(both) >= 10


@pytest.mark.parametrize("task", TASKS)
def test_identity_terms_occur_at_least_as_often_in_benign_examples(task: str) -> None:
    counts = identity_counts(_built(task))
    assert {key: c for key, c in counts.items() if c[0] < c[1]} == {}
    if task == "toxicity":
        assert len(counts) >= 40
        assert min(benign for benign, _ in counts.values()) >= 20  # every identity is mentioned neutrally


def test_without_the_balance_identity_terms_lean_toxic() -> None:
    """The flag exists to measure the balance, so without it the naive skew must be there."""
    counts = identity_counts(_built("toxicity", 0, False))
    assert sum(benign < toxic for benign, toxic in counts.values()) >= 30


@pytest.mark.parametrize(
    ("task", "words", "at_least"),
    [
        ("toxicity", r"kill|murder|destroy|crush|fuck|shit|hate|stupid", 400),
        ("harmful_request", r"kill|poison|attack|hack|shoot|jailbreak|track|overdose|suicide", 600),
        ("prompt_injection", r"ignore|disregard|forget|pretend|system prompt|repeat|ignoriere|oublie|olvida|忽略", 400),
    ],
)
def test_benign_look_alikes_share_the_alarming_words(task: str, words: str, at_least: int) -> None:
    pattern = re.compile(rf"\b(?:{words})", re.IGNORECASE)
    benign = [ex for ex in _built(task) if ex.label == 0 and pattern.search(ex.text)]
    assert len(benign) >= at_least


def test_the_generators_read_no_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training data must stay apart from the blind evaluation sets: nothing is read from disk at all."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"file opened: {args[:1]}")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)
    assert build("prompt_injection", 7)


def test_unknown_task_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        build("spam")


@pytest.mark.parametrize(
    ("task", "lang"),
    [(task, lang) for task in ("toxicity", "harmful_request") for lang in ("de", "fr", "es")],
)
def test_german_french_and_spanish_have_both_labels(task: str, lang: str) -> None:
    """A tenth of real traffic (and of the blind sets) is not English: both labels in each of these languages, so
    "not English" is no cue either way (toxicity: hand-written lines, harmful_request: templates)."""
    by_label = Counter(ex.label for ex in _built(task) if ex.lang == lang)
    at_least = 20 if task == "toxicity" else 80
    assert by_label[1] >= at_least and by_label[0] >= at_least, by_label


def test_everyday_instructions_to_an_assistant_are_no_injection() -> None:
    """E-mail, cc, forward and "ignore the typo" requests are negatives, and exfiltrating to an address is not."""
    examples = _built("prompt_injection")
    benign = [ex for ex in examples if ex.label == 0 and re.search(r"\bcc\b|forward|ignore the typo", ex.text, re.I)]
    exfil = [ex for ex in examples if ex.label == 1 and "@" in ex.text]
    assert len(benign) >= 100 and len(exfil) >= 100


@pytest.mark.parametrize("task", TASKS)
def test_everyday_task_requests_are_negatives_of_every_task(task: str) -> None:
    """Arithmetic in words, conversions with typos, scheduling and sysadmin how-tos (tasks.py): several hundred
    negatives per task, each family present, never a positive (issue 12: "take 77 away from 95" read as toxic)."""
    texts = [ex.text for ex in _built(task) if ex.kind == "benign_task"]
    assert all(ex.label == 0 for ex in _built(task) if ex.kind == "benign_task")
    assert len(texts) >= 600
    families = (
        r"take \d+ (?:away )?from \d+|\d+ less \d+|knock \d+ off",
        r"fa[h]?renh|celc|celsius",
        r"cron|every (?:night|hour|monday|sunday)",
        r"\bkill\b|terminate|purge|nuke",
        r"\byou\b",
    )
    for family in families:
        assert sum(bool(re.search(family, t, re.IGNORECASE)) for t in texts) >= 10, family


def test_everyday_task_requests_are_not_the_dev_harmless_prompts() -> None:
    """Written from the generator's own vocabulary: no task request (tasks.py) equals a prompt of the harmless dev
    split (the test split is not opened)."""
    from pathlib import Path

    dev = Path(__file__).resolve().parents[3] / "evaluation" / "guards" / "harmless_prompts.dev.jsonl"
    if not dev.is_file():
        pytest.skip("no dev split of harmless prompts")
    import json

    prompts = {norm(json.loads(line)["prompt"]) for line in dev.read_text().splitlines() if line.strip()}
    trained = {norm(ex.text) for task in TASKS for ex in _built(task) if ex.kind == "benign_task"}
    assert prompts and len(prompts & trained) == 0
