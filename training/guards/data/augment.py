"""Noise that real messages carry (typos, chat-speak, leetspeak, odd punctuation, greetings, surrounding chatter),
applied alike to both labels so that noise never becomes a label cue. Casing alone is not varied: the encoder
(all-MiniLM-L6-v2) lowercases its input, so case variants would be duplicates to it."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from guardserve.training.guards.data.example import Example
from guardserve.training.guards.data.lexicon import PREFIXES, SUFFIXES, SURROUNDINGS

LATIN = frozenset({"en", "de", "fr", "es", "it", "pt", "nl", "pl", "tr", "sv", "id", "vi"})
_NEIGHBOURS = {
    "a": "qs",
    "s": "ad",
    "d": "sf",
    "e": "wr",
    "r": "et",
    "t": "ry",
    "o": "ip",
    "i": "uo",
    "n": "bm",
    "m": "n",
    "l": "k",
    "u": "yi",
    "h": "gj",
    "c": "xv",
    "g": "fh",
    "p": "o",
    "y": "tu",
    "k": "jl",
}
_LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "l": "1", "g": "9", "b": "8"}
_CHAT = (
    (r"\byou\b", "u"),
    (r"\bare\b", "r"),
    (r"\bplease\b", "pls"),
    (r"\bbecause\b", "bc"),
    (r"\bwhat\b", "wat"),
    (r"\bto be honest\b", "tbh"),
    (r"\bI don't know\b", "idk"),
    (r"\bthanks\b", "thx"),
    (r"\byour\b", "ur"),
    (r"\bfor\b", "4"),
    (r"\bpeople\b", "ppl"),
    (r"\bright now\b", "rn"),
    (r"\bwith\b", "w/"),
)


def typos(text: str, rng: random.Random) -> str:
    """One to three keyboard slips: a swapped pair, a dropped, doubled or neighbouring letter."""
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        spots = [i for i in range(1, len(chars) - 1) if chars[i].isalpha() and chars[i + 1].isalpha()]
        if not spots:
            break
        i = rng.choice(spots)
        op = rng.randrange(4)
        if op == 0:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif op == 1:
            del chars[i]
        elif op == 2:
            chars.insert(i, chars[i])
        else:
            near = _NEIGHBOURS.get(chars[i].lower())
            if near:
                chars[i] = rng.choice(near)
    return "".join(chars)


def leetspeak(text: str, rng: random.Random) -> str:
    """Some letters swapped for look-alike digits, as people type to dodge word filters."""
    rate = rng.choice((0.3, 0.6, 1.0))
    return "".join(_LEET[c.lower()] if c.lower() in _LEET and rng.random() < rate else c for c in text)


def chat_speak(text: str, rng: random.Random) -> str:
    """Lowercase, abbreviations (u, pls, ur), and often no final punctuation."""
    out = text.lower()
    for pattern, short in _CHAT:
        if rng.random() < 0.8:
            out = re.sub(pattern, short, out, flags=re.IGNORECASE)
    return out.rstrip(".!?") if rng.random() < 0.7 else out


def punctuation(text: str, rng: random.Random) -> str:
    """Final punctuation dropped, doubled or exaggerated; apostrophes sometimes dropped."""
    core = text.rstrip(".!?。！？ ")
    if rng.random() < 0.3:
        core = core.replace("'", "")
    return core + rng.choice(("", "!!", "???", "!?", " !!!", "..", " ?"))


def wrap(text: str, rng: random.Random) -> str:
    """A greeting before and/or a sign-off after."""
    choice = rng.randrange(3)
    if choice == 0:
        return rng.choice(PREFIXES) + text
    if choice == 1:
        return text + rng.choice(SUFFIXES)
    return rng.choice(PREFIXES) + text + rng.choice(SUFFIXES)


def surround(text: str, rng: random.Random) -> str:
    """The example placed inside a longer ordinary message."""
    return rng.choice(SURROUNDINGS).replace("{x}", text)


Op = Callable[[str, random.Random], str]
_LATIN_OPS: tuple[Op, ...] = (typos, typos, leetspeak, chat_speak, punctuation, wrap, wrap, surround)
_ENGLISH_ONLY = frozenset({chat_speak, wrap, surround})


def ops_for(example: Example) -> Sequence[Op]:
    """The noise that fits an example: English wrappers only around English; letter noise only in Latin script;
    encoded payloads are only wrapped (a typo would corrupt base64)."""
    if example.kind == "encoded" or example.kind == "benign_encoded":
        return (wrap, surround) if example.lang == "en" else (punctuation,)
    if example.lang == "en":
        return _LATIN_OPS
    if example.lang in LATIN:
        return tuple(op for op in _LATIN_OPS if op not in _ENGLISH_ONLY)
    return (punctuation,)


def augment(examples: Sequence[Example], rng: random.Random, rate: float) -> list[Example]:
    """Noisy variants of about `rate` of the examples (one each, occasionally two ops chained); the originals are
    not included. Label, kind and language are kept: noise does not change what a text is."""
    out: list[Example] = []
    for ex in examples:
        if rng.random() >= rate:
            continue
        ops = ops_for(ex)
        text = rng.choice(ops)(ex.text, rng)
        if rng.random() < 0.25:
            text = rng.choice(ops)(text, rng)
        out.append(replace(ex, text=text))
    return out
