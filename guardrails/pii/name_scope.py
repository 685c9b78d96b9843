"""Where in a text the NER model can find a name: the sentences that hold a capitalised word it could tag.

The NER model (spaCy ``en_core_web_sm``) is most of the PII guard's CPU (~2 ms per 200 characters), and most
sentences of a chat prompt or answer hold nothing it could call PERSON or LOCATION: "Could you explain how a rate
limiter works?" has no capitalised word but its first. The model keys on word shape: on an English text in which
no word starts with a capital letter it finds next to nothing, and what it does find at a sentence's first word is
mostly a false positive ("Revert the commit", "Convert 5 kilograms").

:func:`name_sentences` returns the character spans of the sentences worth running the model on: those with a word
that starts with an upper-case letter, other than

* the pronoun "I" (and "I'm", "I've", ...);
* a sentence's first word when it is one of :data:`STARTERS`: function words, question words, greetings,
  discourse markers and imperative verbs that are never names. Words that double as given names or places
  ("Will", "May", "Mark", "Grant", "Nice", "Split", "Reading") are deliberately not in it.

A text whose writer does not capitalise at all (no word but "I" starts upper-case) goes to the model whole: its
casing tells nothing, and the model still finds "berlin" in "i moved to berlin". Text in scripts without case
(Chinese) is not run.

Adjacent sentences worth running are joined into one span, so the model keeps its context across them. The spans
are a heuristic: how often it changes the guard's findings is measured on the PII dev set (see
``loadtests/bench_ner_scope.py`` and the README). Pattern recognizers (e-mail, phone, card, ...) always see the
whole text; only the NER pass is scoped.
"""

from __future__ import annotations

import re


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Lower-cased sentence-initial words that are never a name or a place: none is in Faker's name and city lists of ten
# locales (a test checks; 'else', 'edit', 'read', 'well', 'us' ... were taken out for it).
STARTERS = _set(
    """a an the this that these those there here it its it's we you he she they my your our their his her me them
    what why how when where which who whom whose whatever whenever wherever
    can could would should must might shall do does did don't doesn't didn't is are was were am be been being
    isn't aren't wasn't weren't has have had hasn't haven't let let's
    and but or nor so yet for if then also because since although though while unless until once as than
    not no yes yeah yep nope ok okay sure great thanks thank please hi hello hey dear greetings sorry
    now just only even still again anyway besides however therefore thus hence meanwhile otherwise instead
    first second third next finally lastly last later afterwards before after during about above below under over
    in on at by from to into onto with within without between among through across along around against toward
    towards of off up down out per via
    all any each every some many much more most few several both either neither nothing something anything
    everything someone anyone everyone nobody somebody anybody everybody other another such same
    one two three four five six eight nine ten
    today tomorrow yesterday tonight always never often sometimes usually maybe perhaps probably actually really
    basically generally typically currently recently note tip step example answer question summary conclusion
    overall result results option options solution problem issue error warning important remember
    add apply ask book buy call cancel change check click close compare compute configure confirm consider copy
    create cut define delete deploy describe disable download enable ensure explain export fill find fix
    follow format generate get give go help import improve include install keep know learn list load log look make
    merge move need open paste patch pick pin place plot print provide pull push put rebase remove rename
    replace reset restart return revert review rewrite run save scan see select send set show sign skip sort start
    stop suggest summarize summarise sum switch take tell test think translate try turn type update upgrade use
    verify wait want walk wash write convert calculate count draw name imagine pretend act ignore compose
    """
)
PRONOUN_I = frozenset({"I", "I'm", "I've", "I'll", "I'd", "I’m", "I’ve", "I’ll", "I’d"})

# A sentence ends after . ! ? or … (and any closing quotes/brackets) followed by white space, or at a line break.
_SENTENCE_BREAK = re.compile(r"[.!?…]+[\"'”’)\]]*\s+|\s*\n\s*")
_LIST_MARKER = re.compile(r"\(?(?:\d{1,3}|[A-Za-z])[.)]")  # "2." "b)" "(3)": the start of the next sentence
_WORD = re.compile(r"[^\W\d_][\w'’-]*")


def sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of ``text``'s sentences (line breaks end sentences too; a list number such as "2." starts
    one); white space between them is left out, so the spans joined by it are the text."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(text):
        mark = match.group().rstrip() if not match.group()[0].isspace() else ""
        end = match.start() + len(mark)  # the mark and closing quotes stay with the sentence
        if not _LIST_MARKER.fullmatch(text[start:end]):
            if text[start:end].strip():
                spans.append((start, end))
            start = match.end()
    if start < len(text) and text[start:].strip():
        spans.append((start, len(text)))
    return spans


def may_hold_name(sentence: str) -> bool:
    """Whether the NER model could find a name in ``sentence`` of a capitalised text: a word starting with an
    upper-case letter that is not "I" and not a :data:`STARTERS` word at the sentence's start."""
    for index, match in enumerate(_WORD.finditer(sentence)):
        word = match.group()
        if not word[0].isupper() or word in PRONOUN_I:
            continue
        if index == 0 and word.lower() in STARTERS:
            continue
        return True
    return False


def capitalised(text: str) -> bool:
    """Whether ``text``'s writer capitalises: some word other than "I" starts upper-case. A text in lower case
    only ("i moved to berlin") says nothing by its casing, and the model still finds many places in it."""
    words = [m.group() for m in _WORD.finditer(text)]
    return any(w[0].isupper() and w not in PRONOUN_I for w in words) or not any(w[0].islower() for w in words)


def name_sentences(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` to run the NER model on: its sentences that :func:`may_hold_name`, adjacent ones joined;
    the whole text when it is not :func:`capitalised`."""
    if not capitalised(text):
        return [(0, len(text))]
    spans: list[tuple[int, int]] = []
    previous_end = -1
    for start, end in sentences(text):
        if not may_hold_name(text[start:end]):
            previous_end = -1
            continue
        if spans and previous_end == spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
        previous_end = end
    return spans
