from __future__ import annotations

import pytest

from guardserve.guardrails import Pseudonymizer


def test_same_value_same_placeholder_per_type() -> None:
    p = Pseudonymizer()
    assert p.placeholder("PERSON", "Ann") == "<PERSON_1>"
    assert p.placeholder("PERSON", "Bob") == "<PERSON_2>"
    assert p.placeholder("PERSON", "Ann") == "<PERSON_1>"
    assert p.placeholder("EMAIL_ADDRESS", "a@b.co") == "<EMAIL_ADDRESS_1>"
    assert (
        p.restore("<PERSON_2> met <PERSON_1> (<EMAIL_ADDRESS_1>), not <PERSON_9>")
        == "Bob met Ann (a@b.co), not <PERSON_9>"
    )


@pytest.mark.parametrize("split", range(1, len("Dear <PERSON_1>, hi")))
def test_stream_restore_across_any_split(split: int) -> None:
    p = Pseudonymizer()
    p.placeholder("PERSON", "Ann Lee")
    text = "Dear <PERSON_1>, hi"
    restorer = p.stream()
    out = restorer.push(text[:split]) + restorer.push(text[split:]) + restorer.flush()
    assert out == "Dear Ann Lee, hi"


def test_stream_restore_three_chunks_and_lookalikes() -> None:
    p = Pseudonymizer()
    p.placeholder("EMAIL_ADDRESS", "x@y.org")
    restorer = p.stream()
    pieces = ["a < b and <EMAIL", "_ADDR", "ESS_1> and <NOT_A_TAG> <"]
    out = "".join(restorer.push(piece) for piece in pieces) + restorer.flush()
    assert out == "a < b and x@y.org and <NOT_A_TAG> <"
