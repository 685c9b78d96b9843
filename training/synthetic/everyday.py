"""Everyday requests: plain questions about ordinary topics, with no alarming verb in them.

A model trained from scratch knows only the words its corpus contains. Without this task most held-out look-alike
prompts hold a word the model has never seen ("laundromat", "kayak", "Philidor"), so the over-refusal rate would
measure vocabulary ("unknown word -> refuse"), not whether the model tells a harmless request from a harmful one.
These dialogues put the everyday words of the held-out prompts (and many others) into harmless sentences, as
:func:`training.synthetic.safety._kind_acts` does for the people of held-out harmful requests. They never contain
a look-alike act (a verb with its value), so held-out values stay unseen in the role the evaluation tests;
``tests/training/test_synthetic.py`` checks both properties. Training only: this task has no held-out split.
"""

from __future__ import annotations

import random

from guardserve.training.synthetic.skills import Dialogue

TOPICS = (
    # hobbies and outings
    "a class reunion", "family dinners", "quiet street corners", "film scenes", "modern art", "tennis lessons",
    "a fishing net", "celery soup", "camping gear", "a feather pillow", "a road map", "a day trip", "reading glasses",
    "used books", "birds", "flight delays", "dance lessons", "a piano recital", "summer clothes", "moths",
    "greenfly on roses", "dandelions in spring", "a kayak", "inflatable boats", "a mic stand", "sunset walks",
    "waterfall hikes", "milky tea", "step aerobics", "baseball cards", "a base camp", "a kick scooter",
    "the penalty box", "fire drills", "team meetings", "film photography", "toilet paper", "cleaning products",
    "oven recipes", "cracking walnuts", "sore knuckles", "packing cubes", "rust on a bike", "stain remover",
    "love letters", "medical school", "personal finance", "advertising jobs", "a short commute", "the laundromat",
    "mildew", "chequebooks", "a ruby ring", "the Philidor Defence in chess", "the Nimzo-Indian opening",
    "the Gruenfeld opening", "board games", "knitting", "a vegetable garden", "bird watching", "jigsaw puzzles",
    "a picnic", "the public library", "sourdough bread", "a bike ride", "houseplants", "a bus timetable",
    "the weather", "a museum visit", "staying hydrated", "a rainy afternoon", "folk music", "pottery",
    "a cup of coffee",
    # work and computers
    "the Ruby language", "the Go language", "Gradle builds", "Kafka topics", "the sshd config", "ffmpeg filters",
    "rsync backups", "mongod logs", "batch jobs", "data backups", "cybersecurity basics", "spreadsheets",
    "unit tests", "php-fpm pools", "a code review", "keyboard shortcuts", "cloud storage", "a new laptop",
    # people and places (possessives of held-out harmful requests, in harmless sentences)
    "the mayor's office", "my cousin's dog", "a stranger's kindness", "my roommate's cat", "my uncle's garden",
    "the intern's first week",
)  # fmt: skip
# (question, answer) pairs; {t} and {u} are topics. None holds an alarming verb or a refusal phrase.
FRAMES = (
    ("Why do so many people like {t}?", "People like {t} for different reasons: it can be useful, relaxing or "
     "simply fun."),
    ("What helps me learn more about {t}?", "Read a short guide on {t}, ask someone who knows it well, and take "
     "notes as you go."),
    ("Write a short note about {t}.", "Here is a short note: {t} is worth a closer look, and there is always more "
     "to learn about it."),
    ("I finally tried {t}. What should I do next?", "Well done! Try it again soon and write down what you liked "
     "about {t}."),
    ("Is this the right time to look into {t}?", "Any time is a good time to start: pick one small step and begin "
     "today."),
    ("Give me some clever ideas about {t}.", "Try one new thing with {t} each week, share it with a friend, and "
     "keep the ideas you like."),
    ("I don't know much about {t}. Where do I start?", "Start with the basics: a short article or video about {t}, "
     "then one small hands-on try."),
    ("Should I combine {t} and {u}?", "You can: try {t} and {u} together once, and keep going if you enjoy it."),
    ("Is buying things for {t} worth it?", "Only buy what you will really use for {t}; borrow the rest at first."),
    ("Tell me why {t} matters to some people.", "For some people {t} is part of a routine they enjoy, and small "
     "routines make a day feel good."),
)  # fmt: skip


def everyday(rng: random.Random, held: bool) -> Dialogue:
    """A plain request about one or two everyday topics (``held`` is ignored: this task is never evaluated)."""
    question, answer = rng.choice(FRAMES)
    t, u = rng.sample(TOPICS, 2)
    user = question.format(t=t, u=u)
    return Dialogue("everyday", user[0].upper() + user[1:], answer.format(t=t, u=u))
