"""A PERSON finding must look like a name; a name the NER model found in part is extended to the whole name.

The small spaCy NER model tags sentence-initial verbs and nouns ("Bill the client", "Drop the table", "Salary
account for ..."), identifiers ("Order A-74252-B", "Batch LT529309"), units and chemical formulas ("GB", "NaCl",
"Cu + AgNO3") as PERSON, and often finds only the surname of a name ("Mehmet *Kaya*"). This module, run on the
analyzer's results:

* cuts a PERSON span into name-shaped words (capitalised, letters with diacritics, ``-`` ``'`` inside, initials;
  particles like "de", "van", "al" inside a name), dropping words with digits, acronyms, lower-case words, element
  symbols, formulas and units; label words ("Customer", "Tenant", "Dear") at its edges go too;
* drops a one-word PERSON that is a common English word at the start of a sentence followed by a word that is no
  name ("Bill the", "Frank feedback", "Angle ABC"): an imperative or a noun ("Mark Twain" keeps two name words);
* extends a PERSON span over adjacent name-shaped words separated by one space ("Ana Clara *Santos*");
* drops a PERSON span right after an article ("the Moon", "the Danube", "an Iris plant"): a name takes none;
* drops a one-word PERSON or LOCATION span that is a named unit ("0 Kelvin", "in Fahrenheit", "5 Newtons") in a
  sentence holding a number or the word "degree(s)";
* drops a LOCATION span with no all-letter word ("v2.8.3", "04.03.2024") or only weekday/month names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import regex  # type: ignore[import-untyped]

from guardserve.guardrails.types import Finding


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Label, greeting and function words: never part of a name, wherever they stand next to one.
LABEL_WORDS = _set(
    """account address applicant attn batch billing build card cart client contact customer dear deposit destination
    employee email firmware form hello hey hi holder home invoice item kernel lot manager mobile model name note order
    passenger patient phone reason record reminder salary serial sku subject tenant thanks ticket unit user version
    from to cc regards monday tuesday wednesday thursday friday saturday sunday cheers welcome meeting notes sales legal
    mastercard visa amex maestro paypal iban swift bitcoin ethereum
    the this that these those when if and but so then also please yes ok today yesterday tomorrow tonight our my your
    his her their we you he she they it i"""
)
# Common English words that start sentences (imperatives, nouns, adjectives) and double as given names or that the
# NER model mistakes for names there. Only a one-word span at a sentence start, followed by a lower-case word, goes.
COMMON_WORDS = _set(
    """add angle apply ask bill book buy call cancel change check chase click close compare compute convert cook copy
    create cut delete deploy describe drop edit enable explain export fill find fix format frank grant guy help hope
    import install jack jump keep list load log make mark merge move note open order pack paste patch pick pin place
    plot print pull push put read rebase remove rename replace reset restart revert review rewrite rob roll run save
    scan see send set ship show sign skip sort split start stop sum switch take tell test try turn update upgrade use
    wait walk wash will write rose dawn faith hunter joy may summer sunny"""
)
CALENDAR_WORDS = _set(
    """monday tuesday wednesday thursday friday saturday sunday january february march april june july august
    september october november december"""
)
PARTICLES = _set("de da del della der den di do dos das du van von ter ten le la al el bin ibn bint y e")
ELEMENTS = _set(
    """H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr
    Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt
    Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr"""
)
NAME_ELEMENTS = frozenset({"Li", "Ho", "Ng"})  # also common surnames
UNITS = _set("Hz kHz MHz GHz Pa kPa MPa Wh kWh mAh Nm dB mL kg mg cm mm km Gy Sv Bq")
# Units named after people: no name next to a number ("0 Kelvin", "20 degrees Celsius in Fahrenheit").
NAMED_UNITS = _set(
    """kelvin celsius fahrenheit rankine newton joule watt pascal hertz volt ampere ohm coulomb farad tesla weber
    henry siemens gray sievert becquerel"""
)
ARTICLES = _set("the a an")

# Capitalised letters, an inner capital (McDonald), inner hyphens (Jean-Luc), O'Brien; or an initial.
# Not "I'm", "It's": an apostrophe only before a capital.
_NAME_WORD = regex.compile(
    r"\p{Lu}(?:['’]\p{Lu})?[\p{Ll}\p{M}]*(?:\p{Lu}[\p{Ll}\p{M}]+)?(?:-\p{L}[\p{Ll}\p{M}]*)*\.?|\p{Lu}\.", regex.UNICODE
)
_FORMULA = re.compile(r"(?:([A-Z][a-z]?)\d*)+")
_TOKEN = re.compile(r"[^\s,;/|=]+")  # NER spans can take a CSV field's neighbours along ("1042,Mei Liu")
_EDGE_PUNCT = "\"'“”‘’()[]{}<>,;:!?"
_SENTENCE_END = ".!?\n"


def is_name_word(word: str) -> bool:
    """Capitalised letters (diacritics, inner hyphen/apostrophe), or an initial; not a formula, unit or acronym."""
    if word in UNITS or (word in ELEMENTS and word not in NAME_ELEMENTS):
        return False
    if _FORMULA.fullmatch(word) and sum(c.isupper() for c in word) >= 2:  # NaCl, AgNO3
        return False
    return bool(_NAME_WORD.fullmatch(word))


def _words(text: str, start: int, end: int) -> list[tuple[int, int, str]]:
    """Whitespace-separated words of ``text[start:end]``, without edge punctuation, with their offsets."""
    out = []
    for m in _TOKEN.finditer(text, start, end):
        s, e = m.start(), m.end()
        while s < e and text[s] in _EDGE_PUNCT:
            s += 1
        while e > s and text[e - 1] in _EDGE_PUNCT:
            e -= 1
        if s < e:
            out.append((s, e, text[s:e]))
    return out


def _at_sentence_start(text: str, start: int) -> bool:
    head = text[:start].rstrip(" \t\"'“(")
    return not head or head[-1] in _SENTENCE_END


def _next_word_is_no_name(text: str, end: int) -> bool:
    """The next word is lower-case, a number or an acronym ("Bill the", "Jump to", "Angle ABC"): no surname."""
    m = re.match(r"[ \t]+([^\s,.;:!?]+)", text[end : end + 60])
    return bool(m and not is_name_word(m.group(1)))


def name_runs(text: str, finding: Finding) -> list[Finding]:
    """The runs of name words inside a PERSON finding (particles inside a run), label words cut off its edges."""
    runs: list[list[tuple[int, int, str]]] = [[]]
    for word in _words(text, finding.start, finding.end):
        bare = word[2].rstrip(".")
        inside = bool(runs[-1]) and word[2] in PARTICLES  # "van" in "Ludwig van Beethoven"
        if (is_name_word(word[2]) and bare.lower() not in LABEL_WORDS) or inside:
            runs[-1].append(word)
        elif runs[-1]:
            runs.append([])
    out = []
    for run in runs:
        while run and run[-1][2] in PARTICLES:
            run.pop()
        if run:
            out.append(Finding(finding.entity_type, run[0][0], run[-1][1], finding.score))
    return out


def _is_common_word_at_start(text: str, f: Finding) -> bool:
    value = text[f.start : f.end]
    return (
        " " not in value
        and value.lower() in COMMON_WORDS
        and _at_sentence_start(text, f.start)
        and _next_word_is_no_name(text, f.end)
    )


def _after_article(text: str, f: Finding) -> bool:
    """ "the Moon", "an Iris plant": a name takes no article."""
    m = re.search(r"(\S+) $", text[max(0, f.start - 20) : f.start])
    return bool(m and m.group(1).lower() in ARTICLES)


def _sentence(text: str, start: int, end: int) -> str:
    head = max(text.rfind(c, 0, start) for c in _SENTENCE_END)
    tails = [i for i in (text.find(c, end) for c in _SENTENCE_END) if i >= 0]
    return text[head + 1 : min(tails) if tails else len(text)]


def _is_named_unit(text: str, f: Finding) -> bool:
    """A one-word finding that is a unit named after a person, in a sentence with a number or "degree(s)"."""
    value = text[f.start : f.end]
    word = value.lower().removesuffix("s")
    if " " in value or (word not in NAMED_UNITS and value.lower() not in NAMED_UNITS):
        return False
    sentence = _sentence(text, f.start, f.end)
    return bool(re.search(r"\d|\bdegrees?\b|°", sentence, re.IGNORECASE))


def _extend(text: str, f: Finding, limit: int = 2) -> Finding:
    start, end = f.start, f.end
    for _ in range(limit):
        m = re.search(r"(\S+) $", text[max(0, start - 40) : start])
        if not m or not _extends_with(m.group(1)):
            break
        start -= len(m.group(1)) + 1
    for _ in range(limit):
        m = re.match(r" (\S+)", text[end : end + 40])
        if not m or not _extends_with(m.group(1)):
            break
        end += len(m.group(1)) + 1
    return Finding(f.entity_type, start, end, f.score)


def _extends_with(word: str) -> bool:
    """A neighbour word joins the name only when it is a whole name word: no punctuation glued to it."""
    return is_name_word(word) and not word.endswith(".") and word.lower() not in LABEL_WORDS | COMMON_WORDS


def shape_names(text: str, findings: Iterable[Finding]) -> list[Finding]:
    """PERSON findings reshaped as described above; LOCATION findings without a word dropped; others unchanged."""
    out: list[Finding] = []
    for f in findings:
        if f.entity_type == "LOCATION":
            words = [w[2] for w in _words(text, f.start, f.end) if w[2].isalpha()]
            if words and not all(w.lower() in CALENDAR_WORDS for w in words) and not _is_named_unit(text, f):
                out.append(f)
        elif f.entity_type == "PERSON":
            out += [
                _extend(text, r)
                for r in name_runs(text, f)
                if not (_is_common_word_at_start(text, r) or _after_article(text, r) or _is_named_unit(text, r))
            ]
        else:
            out.append(f)
    return out
