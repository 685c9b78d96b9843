from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from guardserve.models.cpu.detokenizer import REPLACEMENT, IncrementalDetokenizer

TEXTS = [
    "plain ascii text, with numbers 12345",
    "Café naïve Zürich",
    "emoji 😀🚀 mixed with 日本語 and привет",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 beyond the BMP 🧪🧬",
]


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint: Path) -> Tokenizer:
    return Tokenizer.from_file(str(tiny_checkpoint / "tokenizer.json"))


@pytest.mark.parametrize("text", TEXTS)
def test_token_by_token_never_splits_a_character(tokenizer: Tokenizer, text: str) -> None:
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    # the tiny tokenizer never saw most of these characters: they are split into single-byte tokens
    assert len(ids) > len(text) / 2
    detok = IncrementalDetokenizer(tokenizer)
    pieces = [detok.push(i) for i in ids] + [detok.flush()]
    assert all(REPLACEMENT not in p for p in pieces)
    assert "".join(pieces) == text


def test_multibyte_character_is_held_until_complete(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode("😀", add_special_tokens=False).ids
    assert len(ids) == 4  # four UTF-8 bytes, four byte-level tokens
    detok = IncrementalDetokenizer(tokenizer)
    assert [detok.push(i) for i in ids] == ["", "", "", "😀"]


def test_prompt_context_does_not_leak_into_output(tokenizer: Tokenizer) -> None:
    prompt = tokenizer.encode("Hello there", add_special_tokens=False).ids
    ids = tokenizer.encode(" friend é", add_special_tokens=False).ids
    detok = IncrementalDetokenizer(tokenizer, prompt_ids=prompt)
    assert "".join([detok.push(i) for i in ids] + [detok.flush()]) == " friend é"


def test_flush_emits_an_incomplete_tail(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode("ab😀", add_special_tokens=False).ids
    detok = IncrementalDetokenizer(tokenizer)
    out = "".join(detok.push(i) for i in ids[:-1])  # drop the last byte of the emoji
    assert out == "ab"
    assert detok.flush() == REPLACEMENT
