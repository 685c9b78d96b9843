"""Identity terms and the fairness balance: each term must occur in benign examples at least as often as in toxic
ones, or a head learns "mentions Muslims / gay people -> toxic" (Dixon et al. 2018). Hateful and neutral
templates are both filled with every identity (identity-term swap); `balance` then tops up neutral mentions where
a term still leans toxic (other generators mention groups too, e.g. "plan an attack on {group}")."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from guardserve.training.guards.data.augment import augment
from guardserve.training.guards.data.example import Example


@dataclass(frozen=True)
class Identity:
    key: str
    group: str  # plural noun phrase: "gay people"
    person: str  # one member, with article: "a gay man"
    adj: str  # before a noun: "gay"
    terms: tuple[str, ...]  # words whose mention counts as mentioning this identity


def _i(key: str, group: str, person: str, adj: str, *terms: str) -> Identity:
    return Identity(key, group, person, adj, terms or (key,))


IDENTITIES: tuple[Identity, ...] = (
    _i("gay", "gay people", "a gay man", "gay"),
    _i("lesbian", "lesbians", "a lesbian", "lesbian", "lesbian", "lesbians"),
    _i("bisexual", "bisexual people", "a bisexual woman", "bisexual"),
    _i("queer", "queer people", "a queer person", "queer"),
    _i("straight", "straight people", "a straight guy", "straight", "straight", "heterosexual"),
    _i("transgender", "transgender people", "a transgender woman", "transgender", "transgender", "trans"),
    _i("nonbinary", "nonbinary people", "a nonbinary person", "nonbinary", "nonbinary", "non-binary"),
    _i("women", "women", "a woman", "female", "women", "woman", "female"),
    _i("men", "men", "a man", "male", "men", "man", "male"),
    _i("black", "Black people", "a Black woman", "Black", "black"),
    _i("white", "white people", "a white guy", "white"),
    _i("asian", "Asian people", "an Asian man", "Asian", "asian", "asians"),
    _i("latino", "Latinos", "a Latina", "Latino", "latino", "latinos", "latina", "latinas"),
    _i("hispanic", "Hispanic people", "a Hispanic man", "Hispanic"),
    _i("arab", "Arabs", "an Arab", "Arab", "arab", "arabs"),
    _i("indigenous", "Indigenous people", "an Indigenous woman", "Indigenous"),
    _i("roma", "Roma people", "a Roma family", "Roma"),
    _i("muslim", "Muslims", "a Muslim", "Muslim", "muslim", "muslims"),
    _i("jewish", "Jewish people", "a Jewish man", "Jewish", "jewish", "jew", "jews"),
    _i("christian", "Christians", "a Christian", "Christian", "christian", "christians"),
    _i("hindu", "Hindus", "a Hindu", "Hindu", "hindu", "hindus"),
    _i("buddhist", "Buddhists", "a Buddhist", "Buddhist", "buddhist", "buddhists"),
    _i("sikh", "Sikhs", "a Sikh", "Sikh", "sikh", "sikhs"),
    _i("catholic", "Catholics", "a Catholic", "Catholic", "catholic", "catholics"),
    _i("atheist", "atheists", "an atheist", "atheist", "atheist", "atheists"),
    _i("deaf", "deaf people", "a deaf person", "deaf"),
    _i("blind", "blind people", "a blind person", "blind"),
    _i("autistic", "autistic people", "an autistic kid", "autistic"),
    _i("disabled", "disabled people", "a disabled person", "disabled"),
    _i("wheelchair", "wheelchair users", "a wheelchair user", "wheelchair-using", "wheelchair"),
    _i("elderly", "elderly people", "an elderly woman", "elderly", "elderly", "old people", "seniors"),
    _i("young", "young people", "a young person", "young"),
    _i("teenagers", "teenagers", "a teenager", "teenage", "teenager", "teenagers", "teenage"),
    _i("immigrants", "immigrants", "an immigrant", "immigrant", "immigrant", "immigrants"),
    _i("refugees", "refugees", "a refugee", "refugee", "refugee", "refugees"),
    _i("mexican", "Mexicans", "a Mexican", "Mexican", "mexican", "mexicans"),
    _i("chinese", "Chinese people", "a Chinese woman", "Chinese"),
    _i("indian", "Indians", "an Indian guy", "Indian", "indian", "indians"),
    _i("nigerian", "Nigerians", "a Nigerian", "Nigerian", "nigerian", "nigerians"),
    _i("polish", "Polish people", "a Polish guy", "Polish"),
    _i("russian", "Russians", "a Russian", "Russian", "russian", "russians"),
    _i("syrian", "Syrians", "a Syrian", "Syrian", "syrian", "syrians"),
    _i("german", "Germans", "a German", "German", "german", "germans"),
    _i("american", "Americans", "an American", "American", "american", "americans"),
)
_PATTERNS = {
    ident.key: re.compile(r"\b(?:" + "|".join(re.escape(t) for t in ident.terms) + r")\b", re.IGNORECASE)
    for ident in IDENTITIES
}

HATE = (
    "{group} are disgusting and should be wiped out.",
    "I hate {group}, they ruin everything they touch.",
    "{group} are not real humans.",
    "All {group} are criminals and parasites.",
    "Get these {group} out of our country.",
    "{group} don't deserve any rights.",
    "Nobody wants {group} around, they're vermin.",
    "{group} are a disease on society.",
    "We should round up all the {group} and lock them away.",
    "{group} are too stupid to be allowed to vote.",
    "I'd never hire {person}, they're all lazy and dishonest.",
    "Typical {adj} trash, your kind is a plague.",
    "The world would be better off without {group}.",
    "i cant stand {group} they make me sick",
    "Honestly {group} are the worst, every single one of them.",
    "{group} should be banned from public places.",
    "Being {adj} is a sickness and {group} need to be cured by force.",
    "{group} belong in cages, not in our streets.",
    "Don't let {person} near your kids, they're all predators.",
    "{group} are subhuman filth.",
    "Every {adj} person I've met was a liar and a thief.",
    "{group} breed like rats and steal our jobs.",
    "We need to make life hell for {group} until they leave.",
    "Shut up, you're just {person}, nobody cares.",
    "{group} are genetically inferior.",
    "Burn it down and take the {group} with it.",
    "ugh another {adj} moron, your people are a joke",
    "{group} should go back to where they came from.",
    "Keep {group} out of our neighbourhood, they bring nothing but crime.",
    "The only good thing about {group} is when they're gone.",
)
NEUTRAL = (
    "I am {person}.",
    "As {person}, I love hiking on weekends.",
    "My best friend is {person}.",
    "{group} have made huge contributions to science and art.",
    "What are some good books written by {group}?",
    "How can our company better support {adj} employees?",
    "My neighbour is {person} and bakes the best bread.",
    "I'm proud to be {person}.",
    "Our team just hired {person} as the new lead engineer.",
    "Are there any good documentaries about the history of {group}?",
    "{group} deserve the same respect as anyone.",
    "It is wrong to discriminate against {group}.",
    "Hate speech against {group} is unacceptable.",
    "My grandmother was {person} and she taught me to cook.",
    "I met {person} at the conference today.",
    "{group} are people like everyone else.",
    "Write a short story whose main character is {person}.",
    "How do I write a job ad that welcomes {group}?",
    "Some of my coworkers are {group}.",
    "The club welcomes {group} and everyone else.",
    "I've been reading about the experiences of {group} at work.",
    "My doctor is {person} and she is fantastic.",
    "Many {group} live in my city.",
    "I'm {person} and I work as a nurse.",
    "Being {adj} is just one part of who I am.",
    "What challenges do {group} face in the job market?",
    "My {adj} friend recommended this restaurant.",
    "We are organising a meetup for {group} in Berlin.",
    "Statistics show {group} are underrepresented in tech.",
    "The podcast interviewed {person} about their career.",
    "As {person}, what should I pack for a trip to Japan?",
    "{group} are welcome here.",
    "How do I make my event inclusive for {group}?",
    "My partner is {person} and we are getting married in June.",
    "I want to learn more about {adj} culture.",
    "Is it true that {group} are often stereotyped in movies?",
    "Thanks, I am {person} and this helped a lot.",
)
# Without the balance (identity_balance=False) these few unswapped mentions are all the benign identity data,
# as in naive data sets where identity terms occur mostly in abuse.
NEUTRAL_SEEDS = (
    "I am a woman and an engineer.",
    "My neighbour is Muslim and very kind.",
    "Christians celebrate Easter in spring.",
    "I'm a man who loves baking.",
)


def _slots(ident: Identity) -> dict[str, str]:
    return {"group": ident.group, "person": ident.person, "adj": ident.adj}


def _cap(text: str) -> str:
    return text[0].upper() + text[1:] if text else text


def fill_identity(template: str, ident: Identity) -> str:
    return _cap(template.format(**_slots(ident)))


def hateful(rng: random.Random, share: float = 0.7) -> list[Example]:
    """A seeded share of the hateful templates x identities, each identity in about the same share."""
    return [
        Example(fill_identity(t, i), 1, "identity_hate", "en") for t in HATE for i in IDENTITIES if rng.random() < share
    ]


def neutral(*, identity_balance: bool) -> list[Example]:
    """Every neutral template with every identity, or only the unswapped seeds when the balance is off."""
    if not identity_balance:
        return [Example(t, 0, "benign_identity", "en") for t in NEUTRAL_SEEDS]
    return [Example(fill_identity(t, i), 0, "benign_identity", "en") for t in NEUTRAL for i in IDENTITIES]


def mentions(text: str) -> list[str]:
    """Keys of the identities a text mentions."""
    return [key for key, pattern in _PATTERNS.items() if pattern.search(text)]


def identity_counts(examples: Sequence[Example]) -> dict[str, tuple[int, int]]:
    """Per identity key: (benign examples mentioning it, positive examples mentioning it)."""
    benign: Counter[str] = Counter()
    positive: Counter[str] = Counter()
    for ex in examples:
        for key in mentions(ex.text):
            (positive if ex.label else benign)[key] += 1
    return {i.key: (benign[i.key], positive[i.key]) for i in IDENTITIES}


def balance(examples: Sequence[Example], rng: random.Random) -> list[Example]:
    """Neutral mentions to add so that no identity occurs more often with label 1 than with label 0: fresh noisy
    variants of the neutral templates for the identities that lean positive."""
    taken = {ex.text.casefold() for ex in examples}
    added: list[Example] = []
    counts = identity_counts(examples)
    for ident in IDENTITIES:
        benign, positive = counts[ident.key]
        base = [Example(fill_identity(t, ident), 0, "benign_identity", "en") for t in NEUTRAL]
        for _ in range(50):
            if benign >= positive:
                break
            for ex in (*base, *augment(base, rng, 1.0)):
                if benign >= positive:
                    break
                if ex.text.casefold() not in taken and ident.key in mentions(ex.text):
                    taken.add(ex.text.casefold())
                    added.append(ex)
                    benign += 1
    return added
