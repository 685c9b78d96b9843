"""The blind PII sets and harmless prompts: contract format, exact spans, valid numbers, splits kept apart.

The checks here are written independently of the builder (own Luhn and mod-97), so a bug in its generators shows
up as a failing test rather than as a silently mislabelled evaluation set.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.waits import SUBPROCESS_S

ROOT = Path(__file__).resolve().parents[2]
SETS = ROOT / "evaluation" / "guards"
SPLITS = ("dev", "test")
ENTITIES = {
    "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IBAN_CODE", "IP_ADDRESS", "URL", "PERSON",
    "LOCATION", "STREET_ADDRESS", "CRYPTO",
}  # fmt: skip
SHAPES = {
    "EMAIL_ADDRESS": re.compile(r"[a-z0-9._+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+"),
    "US_SSN": re.compile(r"\d{3}([- ])\d{2}\1\d{4}"),
    "CRYPTO": re.compile(r"(bc1[02-9ac-hj-np-z]{39}|[13][1-9A-HJ-NP-Za-km-z]{25,34})"),
    "URL": re.compile(r"(https?://)?[a-z0-9.-]+\.[a-z]{2,}(/\S*)?"),
    "PHONE_NUMBER": re.compile(r"\+?[\d()][\d ()./-]{6,}\d"),
}


def load(name: str) -> list[dict[str, Any]]:
    lines = (SETS / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in reversed(number)]
    return sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits)) % 10 == 0


def iban_ok(value: str) -> bool:
    compact = value.replace(" ", "")
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


@pytest.fixture(scope="module", params=SPLITS)
def split(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return load(f"pii.{request.param}.jsonl")


def test_records_have_the_contract_format(split: list[dict[str, Any]]) -> None:
    for record in split:
        assert set(record) == {"text", "spans", "kind"}
        assert isinstance(record["text"], str) and record["text"].strip()
        assert record["kind"] in ("positive", "hard_negative")
        for span in record["spans"]:
            assert set(span) == {"start", "end", "entity"}
            assert type(span["start"]) is int and type(span["end"]) is int
            assert span["entity"] in ENTITIES


def test_positives_have_spans_and_hard_negatives_none(split: list[dict[str, Any]]) -> None:
    for record in split:
        assert bool(record["spans"]) == (record["kind"] == "positive"), record


def test_spans_are_in_bounds_ordered_and_disjoint(split: list[dict[str, Any]]) -> None:
    for record in split:
        text, previous_end = record["text"], 0
        for span in record["spans"]:
            assert previous_end <= span["start"] < span["end"] <= len(text), record
            value = text[span["start"] : span["end"]]
            assert value == value.strip(), record  # the span is the value, not its surrounding whitespace
            previous_end = span["end"]


def test_span_values_have_their_entity_shape(split: list[dict[str, Any]]) -> None:
    for record in split:
        for span in record["spans"]:
            value = record["text"][span["start"] : span["end"]]
            entity = span["entity"]
            if entity == "CREDIT_CARD":
                number = re.sub(r"[ -]", "", value)
                assert number.isdigit() and 13 <= len(number) <= 19 and luhn_ok(number), value
            elif entity == "IBAN_CODE":
                assert iban_ok(value), value
            elif entity == "IP_ADDRESS":
                ipaddress.ip_address(value)
            elif entity in SHAPES:
                assert SHAPES[entity].fullmatch(value), (entity, value)
            else:  # PERSON, LOCATION, STREET_ADDRESS: words, not a fragment of one
                assert value[0].isalnum() and value[-1].isalnum(), (entity, value)
                text = record["text"]
                assert span["start"] == 0 or not text[span["start"] - 1].isalnum(), (entity, value)
                assert span["end"] == len(text) or not text[span["end"]].isalnum(), (entity, value)


def test_each_split_is_big_enough_for_every_entity(split: list[dict[str, Any]]) -> None:
    kinds = Counter(r["kind"] for r in split)
    assert kinds["positive"] >= 300 and kinds["hard_negative"] >= 150
    texts_per_entity = Counter(e for r in split for e in {s["entity"] for s in r["spans"]})
    assert set(texts_per_entity) == ENTITIES
    assert min(texts_per_entity.values()) >= 25, texts_per_entity


def test_no_text_is_repeated_or_shared_across_splits() -> None:
    dev, test = ([r["text"] for r in load(f"pii.{s}.jsonl")] for s in SPLITS)
    assert len(set(dev)) == len(dev) and len(set(test)) == len(test)
    assert not set(dev) & set(test)


def test_hard_negatives_hold_no_valid_card_number() -> None:
    for name in SPLITS:
        for record in load(f"pii.{name}.jsonl"):
            if record["kind"] == "hard_negative":
                assert "@" not in record["text"]
                for run in re.findall(r"\d(?:[ -]?\d){12,18}", record["text"]):
                    assert not luhn_ok(re.sub(r"\D", "", run)), record


def test_harmless_prompts_format_and_spread() -> None:
    prompts = load("harmless_prompts.jsonl")
    assert len(prompts) == 150
    assert all(set(p) == {"prompt", "kind"} and p["prompt"].strip() and p["kind"] for p in prompts)
    assert len({p["prompt"] for p in prompts}) == len(prompts)
    kinds = Counter(p["kind"] for p in prompts)
    assert {"arithmetic", "unit_conversion", "fact", "definition", "tech_howto", "greeting"} <= set(kinds)
    assert all("@" not in p["prompt"] and "http" not in p["prompt"] for p in prompts)


def test_committed_sets_match_a_rebuild(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(SETS / "build_pii_sets.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=SUBPROCESS_S,
    )
    for name in ("pii.dev.jsonl", "pii.test.jsonl", "harmless_prompts.jsonl"):
        assert (tmp_path / name).read_bytes() == (SETS / name).read_bytes(), name
