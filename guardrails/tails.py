"""Where a stream must start holding text back: a word still being written, or a number still being written.

Both are scans backwards from the end, linear in what they pass over. (The regular expressions they replace,
``\\S*\\Z`` and ``(?:[A-Z]{2})?[\\d(+][\\d\\s().+\\-/]*\\Z``, are searched from every start position: quadratic in a
long run without spaces or a long table of digits, and they ran on the event loop for every streamed chunk.)
"""

from __future__ import annotations

_NUMBER_PUNCTUATION = frozenset("().+-/")
_NUMBER_START_PUNCTUATION = frozenset("(+")


def word_start(text: str) -> int:
    """Start of the run of non-whitespace characters that ends ``text`` (``len(text)`` if it ends in whitespace)."""
    i = len(text)
    while i > 0 and not text[i - 1].isspace():
        i -= 1
    return i


def _in_number(ch: str) -> bool:
    return ch.isdecimal() or ch.isspace() or ch in _NUMBER_PUNCTUATION


def number_start(text: str) -> int | None:
    """Start of a number still being written at the end of ``text`` (a phone, card or SSN with its separators, an
    IBAN with its two-letter country code), or None. Like the regex above: the run of digits, spaces and ``().+-/``
    that ends the text, from its first digit, ``(`` or ``+``; two capital ASCII letters right before it belong to it;
    and only if it holds a digit."""
    i = len(text)
    while i > 0 and _in_number(text[i - 1]):
        i -= 1
    start = i
    while start < len(text) and not (text[start].isdecimal() or text[start] in _NUMBER_START_PUNCTUATION):
        start += 1
    if start == len(text):
        return None
    if start == i and start >= 2 and all("A" <= c <= "Z" for c in text[start - 2 : start]):
        start -= 2
    return start if any(ch.isdigit() for ch in text[start:]) else None
