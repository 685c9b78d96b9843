"""Skills with one right answer, checked by exact match: two-digit arithmetic, unit conversions, a fact table.

Replies have one fixed format per task (``47 + 38 = 85``), so "exact match" means the whole reply is right.
Training phrasings and held-out phrasings are separate lists; held-out operand pairs and values come from
:func:`guardserve.training.synthetic.split.held_out`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from guardserve.training.synthetic.split import held_out


@dataclass(frozen=True)
class Dialogue:
    task: str
    user: str
    reply: str


# --- arithmetic: two-digit addition and subtraction ------------------------------------------------------------

ADD_TRAIN = (
    "What is {a} + {b}?",
    "What is {a} plus {b}?",
    "Compute {a} + {b}.",
    "Add {a} and {b}.",
    "{a} + {b} = ?",
    "Calculate {a} + {b}, please.",
    "What do you get when you add {a} and {b}?",
    "Please work out {a} + {b}.",
    "Quick question: {a} + {b}?",
    "What's the sum of {a} and {b}?",
    "{a} plus {b} is what?",
    "Can you compute {a} + {b} for me?",
)
ADD_HELD_OUT = ("How much is {a} + {b}?", "Tell me the sum of {a} and {b}.", "I need {a} + {b}.")
SUB_TRAIN = (
    "What is {a} - {b}?",
    "What is {a} minus {b}?",
    "Compute {a} - {b}.",
    "Subtract {b} from {a}.",
    "{a} - {b} = ?",
    "Calculate {a} - {b}, please.",
    "What do you get when you take {b} away from {a}?",
    "Please work out {a} - {b}.",
    "Quick question: {a} - {b}?",
    "What's the difference between {a} and {b}?",
    "{a} minus {b} is what?",
    "Can you compute {a} - {b} for me?",
)
SUB_HELD_OUT = ("How much is {a} - {b}?", "Tell me what {a} minus {b} is.", "I need {a} - {b}.")


def addition_held_out(a: int, b: int) -> bool:
    return held_out("add", min(a, b), max(a, b))  # symmetric: 38 + 47 is held out with 47 + 38


def subtraction_held_out(a: int, b: int) -> bool:
    return held_out("sub", a, b)


def arithmetic(rng: random.Random, held: bool) -> Dialogue:
    subtract = rng.random() < 0.5
    while True:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        if subtract and a < b:
            a, b = b, a
        out = subtraction_held_out(a, b) if subtract else addition_held_out(a, b)
        if out == held:
            break
    if subtract:
        template = rng.choice(SUB_HELD_OUT if held else SUB_TRAIN)
        return Dialogue("arithmetic", template.format(a=a, b=b), f"{a} - {b} = {a - b}")
    template = rng.choice(ADD_HELD_OUT if held else ADD_TRAIN)
    return Dialogue("arithmetic", template.format(a=a, b=b), f"{a} + {b} = {a + b}")


# --- unit conversions (factors 10, 100, 1000: learnable by a tiny model) ------------------------------------

UNITS = (
    ("metres", "centimetres", 100),
    ("kilometres", "metres", 1000),
    ("kilograms", "grams", 1000),
    ("centimetres", "millimetres", 10),
    ("litres", "millilitres", 1000),
    ("kilobytes", "bytes", 1000),
)
UNITS_TRAIN = (
    "How many {to} are in {v} {frm}?",
    "Convert {v} {frm} to {to}.",
    "What is {v} {frm} in {to}?",
    "{v} {frm} is how many {to}?",
    "Please convert {v} {frm} into {to}.",
    "Express {v} {frm} in {to}.",
    "How many {to} is {v} {frm}?",
)
UNITS_HELD_OUT = (
    "How many {to} make up {v} {frm}?",
    "Turn {v} {frm} into {to}.",
    "Could you give me {v} {frm} in {to}?",
)


def units(rng: random.Random, held: bool) -> Dialogue:
    frm, to, factor = rng.choice(UNITS)
    while True:
        v = rng.randint(2, 99)
        if held_out("unit", v) == held:
            break
    template = rng.choice(UNITS_HELD_OUT if held else UNITS_TRAIN)
    return Dialogue("units", template.format(v=v, frm=frm, to=to), f"{v} {frm} is {v * factor} {to}.")


# --- the fact table ------------------------------------------------------------------------------------------

FACTS: dict[str, dict[str, str]] = {
    "symbol": {
        "gold": "Au",
        "silver": "Ag",
        "iron": "Fe",
        "copper": "Cu",
        "sodium": "Na",
        "potassium": "K",
        "lead": "Pb",
        "tin": "Sn",
        "oxygen": "O",
        "hydrogen": "H",
        "carbon": "C",
        "helium": "He",
    },
    "legs": {
        "spider": "8",
        "ant": "6",
        "bee": "6",
        "cat": "4",
        "horse": "4",
        "chicken": "2",
        "crab": "10",
        "beetle": "6",
        "cow": "4",
        "duck": "2",
    },
    "opposite": {
        "hot": "cold",
        "big": "small",
        "fast": "slow",
        "early": "late",
        "open": "closed",
        "light": "dark",
        "full": "empty",
        "happy": "sad",
        "strong": "weak",
        "high": "low",
    },
}
FACT_REPLY = {
    "symbol": "The chemical symbol for {x} is {y}.",
    "legs": "A {x} has {y} legs.",
    "opposite": "The opposite of {x} is {y}.",
}
FACT_TRAIN = {
    "symbol": (
        "What is the chemical symbol for {x}?",
        "Which symbol does {x} have in the periodic table?",
        "Chemical symbol of {x}?",
        "What symbol stands for {x}?",
        "Tell me the symbol for the element {x}.",
    ),
    "legs": (
        "How many legs does a {x} have?",
        "Number of legs of a {x}?",
        "Count the legs on a {x}.",
        "How many legs has a {x} got?",
        "Tell me how many legs a {x} has.",
    ),
    "opposite": (
        "What is the opposite of {x}?",
        "Give me the opposite of {x}.",
        "Antonym of {x}?",
        "Which word means the opposite of {x}?",
        "What's the antonym of the word {x}?",
    ),
}
FACT_HELD_OUT = {
    "symbol": ("What's the chemical symbol of {x}?", "How is {x} written as a chemical symbol?"),
    "legs": ("A {x} walks on how many legs?", "What is the number of legs a {x} has?"),
    "opposite": ("What word is opposite to {x}?", "Name the opposite of {x}."),
}


def facts(rng: random.Random, held: bool) -> Dialogue:
    relation = rng.choice(sorted(FACTS))
    x = rng.choice(sorted(FACTS[relation]))
    template = rng.choice((FACT_HELD_OUT if held else FACT_TRAIN)[relation])
    return Dialogue("facts", template.format(x=x), FACT_REPLY[relation].format(x=x, y=FACTS[relation][x]))
