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

Each such sentence is widened by :data:`CONTEXT_WORDS` words on both sides, and overlapping spans are joined: run
on a sentence alone, the model loses what it saw of the neighbours ("Ávila is nice." after "Thanks." is a person,
alone a nationality). A text whose casing says nothing -- no capitalised word except sentence starts and "I"
("My friend lives in berlin.") -- goes to the model whole: the model still finds many places in lower case. Text in
scripts without case (Chinese) is not run.

That fallback is for what people type. Text a language model wrote (the output guards' scope, ``cased_text``)
capitalises names whether or not it holds one, so there its casing is always trusted: an answer with no capital
past its sentence starts is read only where a sentence starts with a word that is not a starter.

The spans are a heuristic: how often they change the guard's findings is measured on the evaluation sets' dev and
test splits (``loadtests/bench_ner_scope.py``, README "Where NER runs"). Pattern recognizers (e-mail, phone,
card, ...) always see the whole text; only the NER pass is scoped. What it can still miss: a lower-case place in a
text that capitalises names elsewhere, more than four words from them ("Hi, I'm Maria from Madrid. The weather
here is fine today. Last year we moved to berlin.": the whole-text run finds "berlin", this one does not).
"""

from __future__ import annotations

import bisect
import re
from typing import Literal, get_args

# PIIConfig.ner_scope: NER over name sentences (casing trusted where it tells), over the name sentences of text a model
# wrote (casing always trusted), or over whole texts
NerScope = Literal["name_sentences", "cased_text", "whole_text"]
NER_SCOPES: tuple[str, ...] = get_args(NerScope)
DEFAULT_NER_SCOPE: NerScope = "name_sentences"


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Lower-cased sentence-initial words that are never a name or a place: none is in Faker's name and city lists of 30
# locales (a test checks; 'else', 'edit', 'read', 'well', 'us', 'per', 'my' ... were taken out for it).
STARTERS = _set(
    """a an the this that these those there here it its it's we you he she they your our their his her me
    what why how when where which who whom whose whatever whenever wherever
    can could would should must might shall do does did don't doesn't didn't is are was were am be been being
    isn't aren't wasn't weren't has have had hasn't haven't let let's
    and but or nor so yet for if then also because since although though while unless until once as than
    not no yes yeah yep nope ok okay sure great thanks thank please hi hello hey dear greetings sorry
    now just only even still again anyway besides however therefore thus hence meanwhile otherwise instead
    first second third next finally lastly last later afterwards before after during about above below under over
    in on at by from to into onto with within without between through across along around against toward
    towards of off up down out via
    all any each every some many much few several both either neither nothing something anything
    everything someone anyone everyone nobody somebody anybody everybody other another such same
    one two three four five six eight nine ten
    today tomorrow yesterday tonight always never often sometimes usually maybe perhaps probably actually really
    basically generally typically currently recently note tip step example answer question summary conclusion
    overall result results option options solution problem issue error warning important remember
    add apply ask book buy call cancel change check click close compare compute configure confirm consider copy
    create cut define delete deploy describe disable download enable ensure explain export fill find fix
    follow format generate get go help import improve include install keep know learn list load log look make
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
_SPACED = re.compile(r"\S+")  # white-space separated words: spans start and end on white space, as tokens do


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


def casing_tells(text: str, spans: list[tuple[int, int]] | None = None) -> bool:
    """Whether ``text``'s casing says where names are: some word other than "I" starts upper-case where no rule
    demands it (not as a sentence's first word), or no word starts lower-case (a script without case, all caps).
    Otherwise ("i moved to berlin", "My friend lives in berlin.") it says nothing, and the model still finds many
    places in lower case. ``spans``: the text's :func:`sentences`, when the caller has them."""
    lower = False
    for start, end in sentences(text) if spans is None else spans:
        for index, match in enumerate(_WORD.finditer(text, start, end)):
            word = match.group()
            if index > 0 and word[0].isupper() and word not in PRONOUN_I:
                return True
            lower = lower or word[0].islower()
    return not lower


CONTEXT_WORDS = 4  # words of context each side of a span: the NER model's features see about 4 tokens each way


def name_sentences(text: str, context_words: int = CONTEXT_WORDS, trust_casing: bool = False) -> list[tuple[int, int]]:
    """Spans of ``text`` to run the NER model on: its sentences that :func:`may_hold_name`, each widened by
    ``context_words`` words on both sides (what the model would have seen of its neighbours in the whole text: run
    alone, "Ávila is nice." is a nationality, after "Thanks." a person), overlapping ones joined; the whole text
    when its casing says nothing (:func:`casing_tells`), unless ``trust_casing``: text a language model wrote
    (scope "cased_text", the output guards) capitalises names whether or not it holds one, so a text without a
    capital past its sentence starts holds no name there either."""
    sentence_spans = sentences(text)
    if not trust_casing and not casing_tells(text, sentence_spans):
        return [(0, len(text))] if text.strip() else []
    words = [(m.start(), m.end()) for m in _SPACED.finditer(text)]
    starts = [s for s, _ in words]
    spans: list[tuple[int, int]] = []
    for start, end in sentence_spans:
        if not may_hold_name(text[start:end]):
            continue
        first = bisect.bisect_right(starts, start) - 1  # the word the sentence starts in
        last = bisect.bisect_left(starts, end) - 1  # the last word starting before its end
        start = words[max(0, first - context_words)][0]
        end = words[min(len(words) - 1, last + context_words)][1]
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


def ner_spans(text: str, scope: str) -> list[tuple[int, int]]:
    """The character spans of ``text`` the NER model reads under ``scope`` (a :data:`NerScope`)."""
    if scope == "whole_text":
        return [(0, len(text))] if text.strip() else []
    if scope in ("name_sentences", "cased_text"):
        return name_sentences(text, trust_casing=scope == "cased_text")
    raise ValueError(f"NER scope {scope!r} is not one of {NER_SCOPES}")
