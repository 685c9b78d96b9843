"""The labelled example every generator yields, and the helpers that fill templates with slot values."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Example:
    """One training text for one binary task. `kind` is the subtype (threat, override, benign_tech...), kept so the
    trainer can report errors per subtype and so tests can check every subtype is present."""

    text: str
    label: int
    kind: str
    lang: str


def fill(template: str, slots: Mapping[str, Sequence[str]], rng: random.Random) -> str:
    """The template with each {slot} replaced by a value drawn from `slots` (each occurrence drawn anew); values may
    hold slots themselves ("kill the {proc} process"), filled in a second pass."""
    text = template
    for _ in range(3):
        if not _SLOT.search(text):
            break
        text = _SLOT.sub(lambda m: rng.choice(slots[m.group(1)]), text)
    return text


def expand(
    templates: Sequence[str],
    slots: Mapping[str, Sequence[str]],
    rng: random.Random,
    n: int,
    *,
    label: int,
    kind: str,
    lang: str = "en",
) -> list[Example]:
    """Up to `n` distinct fills of the templates (templates cycled so each gets its share; duplicates drawn by
    chance are skipped, so a small template space yields fewer than `n`)."""
    seen: set[str] = set()
    out: list[Example] = []
    order = list(templates)
    attempts = 0
    while len(out) < n and attempts < n * 4:
        template = order[attempts % len(order)]
        attempts += 1
        text = fill(template, slots, rng)
        if text not in seen:
            seen.add(text)
            out.append(Example(text, label, kind, lang))
    return out


def literal(texts: Iterable[str], *, label: int, kind: str, lang: str = "en") -> list[Example]:
    """Hand-written seeds as examples, unchanged."""
    return [Example(t, label, kind, lang) for t in texts]


def norm(text: str) -> str:
    """The deduplication key: case-folded (the encoder lowercases) with whitespace collapsed."""
    return " ".join(text.casefold().split())
