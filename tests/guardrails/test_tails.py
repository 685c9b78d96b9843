"""The stream's hold-back scans: the same answers as the regular expressions they replaced, in linear time."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from guardserve.guardrails.tails import number_start, word_start

# The reference: what PIIGuard.tail_hold searched before (quadratic on long runs).
WORD = re.compile(r"\S*\Z")
NUMBER = re.compile(r"(?:[A-Z]{2})?[\d(+][\d\s().+\-/]*\Z")

# Digits (ASCII, Arabic-Indic, superscript: isdigit but not decimal), separators, letters, Unicode spaces.
ALPHABET = "0123456789٣²()+-./ \t\n\u00a0\u2003ABDEZaxé@_"


def reference_number(text: str) -> int | None:
    match = NUMBER.search(text)
    return match.start() if match is not None and any(ch.isdigit() for ch in match.group()) else None


@given(st.text(alphabet=ALPHABET, max_size=40))
def test_the_scans_agree_with_the_regexes(text: str) -> None:
    assert word_start(text) == WORD.search(text).start()  # type: ignore[union-attr]
    assert number_start(text) == reference_number(text)


def test_examples() -> None:
    assert word_start("mail ann@exa") == 5
    assert word_start("done ") == 5
    assert number_start("call +1 (202) 555-01") == 5
    assert number_start("IBAN DE89 3704 0044") == 5
    assert number_start("no digits here (") is None


def test_cost_is_linear_in_the_run() -> None:
    """Counted, not timed: each scan looks at every character of a long run at most a few times."""

    class Counting(str):
        reads = 0

        def __getitem__(self, index: object) -> str:  # type: ignore[override]
            Counting.reads += 1
            return str.__getitem__(self, index)  # type: ignore[index]

    for text in ("7" * 20_000 + "x", "a" * 20_000, "1 2 " * 5_000):
        Counting.reads = 0
        word_start(Counting(text))
        number_start(Counting(text))
        assert Counting.reads <= 3 * len(text) + 10, (text[:8], Counting.reads)
