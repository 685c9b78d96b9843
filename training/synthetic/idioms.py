"""Idioms: harmless requests built on the alarming verbs of harmful ones ("beat the morning traffic", "break the
ice", "shoot a quick email"), each with its own answer, asked in the shared request frames.

The look-alike families (:mod:`training.synthetic.safety`) give each alarming verb one kind of harmless object
(``beat`` only ever meets chess openings), so a tiny model learns "verb + unfamiliar object -> refuse". These add
objects of many kinds to the same verbs. Training only: no held-out split, never evaluated; none of them holds a
held-out look-alike value or frame (``tests/training/test_synthetic.py``).
"""

from __future__ import annotations

import random

from guardserve.training.synthetic.safety import INTENTS_TRAIN
from guardserve.training.synthetic.skills import Dialogue

IDIOMS = (
    ("beat the morning traffic", "Leave before the rush hour, check a live traffic map, or try a quieter route."),
    ("beat the summer heat", "Drink water often, stay in the shade at midday and close the curtains on sunny "
     "windows."),
    ("beat jet lag", "Switch to local time at once: daylight in the morning, no long naps, bed at the usual hour."),
    ("beat eggs for a cake", "Whisk them with a fork or a whisk until yolks and whites are one smooth colour."),
    ("beat the last level of a video game", "Learn the patterns first, upgrade your gear, and try again with a "
     "plan."),
    ("beat a deadline at work", "Split the work into small parts, do the hardest one first, and ask for help "
     "early."),
    ("attack a long to-do list", "Pick the three most important items, start with the smallest, and cross them "
     "off as you go."),
    ("attack a hard maths problem", "Write down what you know, try a smaller case first, and check every step."),
    ("attack a messy garage", "Work one shelf at a time: keep, give away or recycle, and label the boxes you keep."),
    ("attack the day with more energy", "Go to bed at the same time, drink water when you wake up, and get some "
     "daylight early."),
    ("shoot a quick email to my team", "Keep it short: a clear subject, the key point first, and the next step."),
    ("shoot hoops after work", "Warm up, start close to the basket, and step back as your shots start to fall."),
    ("shoot a short video for a school project", "Plan three shots, film in good light, keep the camera steady "
     "and record sound close to the speaker."),
    ("steal a few quiet minutes for myself", "Block ten minutes in your calendar, step outside, and leave your "
     "phone behind."),
    ("steal ideas from great designers", "Collect examples you admire, note why they work, and mix them into your "
     "own style."),
    ("break the ice at a party", "Ask an open question about something around you, listen, and share a small "
     "story of your own."),
    ("break in new shoes", "Wear them at home for short spells with thick socks, and stretch tight spots gently."),
    ("break the news gently to my team", "Tell them early and in person, say clearly what happens next, and leave "
     "time for questions."),
    ("blow off steam after work", "Go for a walk or a run, call a friend, or put on music you love."),
    ("blow up a photo to poster size", "Export it at the highest resolution, then print it at a shop that does "
     "large formats."),
    ("crush my exams this year", "Study a little every day, test yourself with past papers, and sleep well before "
     "each exam."),
    ("smash my next job interview", "Research the company, practise your answers aloud, and prepare two "
     "questions for them."),
    ("destroy the other teams at a pub quiz", "Read widely, split the topics across your team, and practise with "
     "old quiz questions."),
    ("kill the battery drain on my laptop", "Turn down the screen brightness, close apps you don't use, and check "
     "which ones run in the background."),
    ("kill the echo in my living room", "Add soft things: a rug, curtains, cushions and a full bookshelf all "
     "absorb sound."),
    ("knock out my chores before noon", "Make a short list, set a timer for each chore, and start with the one "
     "you like least."),
    ("hit my savings goal", "Move a fixed amount to savings on payday, track spending for a month, and cut one "
     "regular cost."),
    ("execute a plan for a group project", "Agree on a goal, split it into weekly tasks with an owner each, and "
     "check progress every week."),
)  # fmt: skip


def idiom(rng: random.Random, held: bool) -> Dialogue:
    """An idiom in one of the shared training frames (``held`` is ignored: this task is never evaluated)."""
    act, answer = rng.choice(IDIOMS)
    user = rng.choice(INTENTS_TRAIN).format(act=act)
    return Dialogue("idioms", user[0].upper() + user[1:], answer)
