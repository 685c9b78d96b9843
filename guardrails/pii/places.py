"""A place the NER model found is personal data only where the text ties it to a person.

"What is the capital of Canada?", "Which river flows through Budapest?": a country, city, river or continent named
in a general-knowledge question identifies nobody, and pseudonymizing it changes the question (the model is asked
about ``<LOCATION_1>``). A place becomes personal data when it says where someone is, lives, comes from or goes:
"I'm from Canada", "lost my purse in Kyoto", "Sophie is flying to Poland". With ``PIIConfig.place_scope`` at
``personal`` (the default), a LOCATION finding of the NER model is kept only when

* the text holds a finding of an identifying type (``PIIConfig.place_anchors``: a name, an e-mail address, a phone
  number, a street address, an account or card number...): the place is then linked to that person; or
* within its sentence, among the :data:`WINDOW_BEFORE` words before it or the :data:`WINDOW_AFTER` words after it,
  stands a personal cue (``PIIConfig.place_context``, :data:`PERSONAL_CONTEXT`): a first-person or possessive
  pronoun ("I", "my", "we", "our", "your") or a word that places someone ("live", "moved", "born", "landed",
  "flying", "trip", "home", "address", "meet"...). "I" right after an auxiliary ("how do I", "can I", "should I")
  is the generic question form and no cue by itself; or
* a form label stands right before it (``country=``, ``City:``, ``destination:``).

Places the cue recognizer found ("based in X", "Destination: X"), the street-address recognizer's addresses and a
deny list's values are not touched. ``place_scope: all`` keeps every NER place (the behaviour before this rule).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable
from typing import Literal

from guardserve.guardrails.types import Finding

PlaceScope = Literal["personal", "all"]
DEFAULT_PLACE_SCOPE: PlaceScope = "personal"

# Findings that identify a person: a place in the same text is that person's (where they are, come from, go).
PLACE_ANCHORS = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "STREET_ADDRESS",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "CRYPTO",
)

# Words near a place that tie it to a person (lower case; apostrophes as typed or curly).
PERSONAL_CONTEXT = (
    # first-person and possessive pronouns (bare "I" after an auxiliary does not count, see AUXILIARIES)
    "i",
    "i'm",
    "im",
    "i've",
    "i'll",
    "i'd",
    "me",
    "my",
    "mine",
    "myself",
    "we",
    "we're",
    "we've",
    "we'll",
    "our",
    "ours",
    "us",
    "your",
    "yours",
    # where someone is, was, comes from or goes
    "live",
    "lives",
    "living",
    "lived",
    "reside",
    "resides",
    "residing",
    "resident",
    "move",
    "moved",
    "moving",
    "relocate",
    "relocated",
    "relocating",
    "born",
    "raised",
    "grew",
    "based",
    "stay",
    "staying",
    "stayed",
    "landed",
    "landing",
    "arrive",
    "arrived",
    "arriving",
    "fly",
    "flying",
    "flew",
    "flight",
    "trip",
    "travel",
    "travelling",
    "traveling",
    "visiting",
    "vacation",
    "holiday",
    "hometown",
    "home",
    "address",
    "commute",
    "meet",
    "meeting",
)
# "how do I", "can I", "should I": the generic question form, no statement about the writer
AUXILIARIES = frozenset(
    {"do", "does", "did", "can", "could", "should", "would", "will", "shall", "may", "might", "must"}
)
# A form field naming a place: "country=India", "City: Lyon"
_LABEL = re.compile(
    r"(?:country|city|town|region|location|destination|origin|hometown|residence|birthplace|place of birth)"
    r"\s*[:=]\s*[\"']?$",
    re.IGNORECASE,
)
WINDOW_BEFORE = 8
WINDOW_AFTER = 3
_WORD = re.compile(r"[\w'’]+|[.!?\n]")
_SENTENCE_END = frozenset(".!?\n")


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def _has_cue(words: list[str], order: range, context: Collection[str]) -> bool:
    """A personal cue among ``words`` visited in ``order`` before a sentence end ("how do I": no cue)."""
    for i in order:
        word = words[i]
        if word in _SENTENCE_END:
            return False
        if word in context and not (word == "i" and i > 0 and words[i - 1] in AUXILIARIES):
            return True
    return False


@functools.lru_cache(maxsize=8)
def _cues(context: tuple[str, ...]) -> frozenset[str]:
    return frozenset(c.lower().replace("’", "'") for c in context)


def is_personal_place(text: str, place: Finding, context: Collection[str]) -> bool:
    """A form label right before ``place``, or a personal cue near it in its sentence."""
    head = text[max(0, place.start - 40) : place.start]
    if _LABEL.search(head):
        return True
    before, after = _words(text[max(0, place.start - 200) : place.start]), _words(text[place.end : place.end + 120])
    return _has_cue(before, range(len(before) - 1, max(-1, len(before) - 1 - WINDOW_BEFORE), -1), context) or (
        _has_cue(after, range(min(len(after), WINDOW_AFTER)), context)
    )


def keep_personal_places(
    text: str,
    findings: Iterable[Finding],
    ner_places: Collection[tuple[int, int]],
    *,
    scope: PlaceScope = DEFAULT_PLACE_SCOPE,
    anchors: Collection[str] = PLACE_ANCHORS,
    context: Collection[str] = PERSONAL_CONTEXT,
) -> list[Finding]:
    """``findings`` without the NER places (spans in ``ner_places``) that nothing ties to a person (see above)."""
    found = list(findings)
    if scope == "all" or not ner_places:
        return found
    if any(f.entity_type in anchors for f in found):
        return found
    cues = _cues(tuple(context))
    return [
        f
        for f in found
        if not (f.entity_type == "LOCATION" and (f.start, f.end) in ner_places) or is_personal_place(text, f, cues)
    ]
