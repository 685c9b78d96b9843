"""The blind toxicity and harmful_request evaluation sets: shape, balance, and dev/test kept apart.

The sets only mean something if test sentences were never seen while making choices on dev, so besides the file
format this checks that no text and no sentence occurs in both splits, and that no dev/test pair is a near copy.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
SETS = ROOT / "evaluation" / "guards"
KINDS = {
    "toxicity": {
        1: {"threat", "identity_hate", "insult", "harassment", "profanity_abuse"},
        0: {"benign", "benign_lookalike"},
    },
    "harmful_request": {
        1: {"weapons", "poisoning", "intrusion", "self_harm", "stalking", "violence", "drugs", "evasion"},
        0: {"benign", "benign_lookalike"},
    },
}
LANGS = {"en", "de", "fr", "es"}


def _builder() -> ModuleType:
    return load_script(SETS / "build_classifier_sets.py")


def _rows(task: str, split: str) -> list[dict[str, object]]:
    lines = (SETS / f"{task}.{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


@pytest.mark.parametrize("split", ["dev", "test"])
@pytest.mark.parametrize("task", sorted(KINDS))
def test_rows_have_the_contract_shape_and_balance(task: str, split: str) -> None:
    rows = _rows(task, split)
    for row in rows:
        assert set(row) == {"text", "label", "kind", "lang"}, row
        assert isinstance(row["text"], str) and row["text"].strip() == row["text"] and row["text"], row
        assert row["label"] in (0, 1) and row["lang"] in LANGS, row
        assert row["kind"] in KINDS[task][int(str(row["label"]))], row
    labels = Counter(row["label"] for row in rows)
    assert labels[0] >= 250 and labels[1] >= 250, labels
    kinds = Counter(row["kind"] for row in rows)
    assert set(kinds) == KINDS[task][0] | KINDS[task][1], kinds
    if task == "toxicity":
        assert kinds["threat"] >= 60 and kinds["identity_hate"] >= 50, kinds
    foreign = sum(row["lang"] != "en" for row in rows) / len(rows)
    assert 0.05 <= foreign <= 0.2, foreign


@pytest.mark.parametrize("task", sorted(KINDS))
def test_dev_and_test_share_no_text_sentence_or_near_copy(task: str) -> None:
    builder = _builder()
    dev = [str(row["text"]) for row in _rows(task, "dev")]
    test = [str(row["text"]) for row in _rows(task, "test")]
    assert len(set(dev)) == len(dev) and len(set(test)) == len(test)
    assert not set(dev) & set(test)
    dev_sentences = {s for text in dev for s in builder.sentences(text)}
    test_sentences = {s for text in test for s in builder.sentences(text)}
    assert not dev_sentences & test_sentences
    test_tokens = [_tokens(text) for text in test]
    for text in dev:
        a = _tokens(text)
        closest = max(len(a & b) / len(a | b) for b in test_tokens)
        assert closest < 0.7, text


def test_committed_files_are_what_the_sources_give() -> None:
    assert _builder().main(["--check"]) == 0
