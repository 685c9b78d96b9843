from __future__ import annotations

import pytest

from guardserve.models.cpu.stops import StopMatcher


def run(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    out = []
    for piece in pieces:
        text, hit = matcher.push(piece)
        out.append(text)
        if hit:
            return "".join(out), True
    out.append(matcher.flush())
    return "".join(out), False


def test_no_stops_passes_text_through() -> None:
    assert run([], ["a", "b"]) == ("ab", False)


@pytest.mark.parametrize("split", range(1, 11))
def test_stop_split_anywhere_is_cut_before_it(split: int) -> None:
    text = "Hello END world"
    pieces = [text[:split], text[split:]]
    assert run(["END"], pieces) == ("Hello ", True)


def test_partial_match_is_held_back_then_released() -> None:
    matcher = StopMatcher(["###"])
    assert matcher.push("ab#") == ("ab", False)
    assert matcher.push("#") == ("", False)
    assert matcher.push("x") == ("##x", False)


def test_earliest_of_several_stops_wins() -> None:
    assert run(["world", "lo"], ["Hello world"]) == ("Hel", True)


def test_nothing_of_a_stop_is_ever_emitted() -> None:
    matcher = StopMatcher(["<END>"])
    emitted = ""
    for ch in "answer <EN":
        emitted += matcher.push(ch)[0]
    assert emitted == "answer "
    text, hit = matcher.push("D> trailing")
    assert hit and text == ""
