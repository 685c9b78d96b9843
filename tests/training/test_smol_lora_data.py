"""Candidate 2 of the smol safety data: every kind goes through the same frames, dev intents stay out of training,
helpful and refusal examples are balanced; the LoRA trainer's data helpers (sentence trimming, length batches)."""

from __future__ import annotations

import random
from collections import Counter

from guardserve.training.lora import length_batches, trim_to_sentence
from guardserve.training.synthetic.smol_safety import (
    BENIGN,
    BENIGN_TASKS,
    FRAMES,
    HARMFUL,
    LOOKALIKE,
    build_examples,
)
from tests.support.smol_frames import framed_as


def _frame_of(prompt: str, intents: tuple[str, ...]) -> str | None:
    found = framed_as(prompt, intents)
    return found[0] if found else None


def test_lookalikes_and_benign_tasks_use_the_harmful_frames() -> None:
    examples = build_examples(seed=0, frames_per_intent=4, lookalike_frames=2, benign_frames=1, dev_frames=2)
    for kind, intents in (("harmful", HARMFUL), ("lookalike", LOOKALIKE), ("benign", BENIGN_TASKS)):
        framed = [e for e in examples if e.kind == kind and e.prompt not in BENIGN]
        assert framed and all(_frame_of(e.prompt, intents) for e in framed), kind
    # no frame is used by harmful prompts only
    used = Counter((_frame_of(e.prompt, LOOKALIKE + BENIGN_TASKS)) for e in examples if e.kind != "harmful")
    assert len([f for f in used if f]) == len(FRAMES)


def test_helpful_intents_split_by_index_and_dev_stays_out_of_training() -> None:
    examples = build_examples(seed=0, frames_per_intent=4, lookalike_frames=2, benign_frames=1, dev_frames=2)
    train = [e.prompt for e in examples if e.split == "train"]
    for intents in (LOOKALIKE, BENIGN_TASKS):
        dev_intents = [x for n, x in enumerate(intents) if n % 5 == 4]
        assert dev_intents and not any(_frame_of(p, tuple(dev_intents)) for p in train)
    assert len(set(LOOKALIKE)) == len(LOOKALIKE) >= 70 and len(set(BENIGN_TASKS)) == len(BENIGN_TASKS) >= 60


def test_helpful_examples_balance_the_refusals() -> None:
    examples = build_examples(seed=0, frames_per_intent=4, lookalike_frames=2, benign_frames=1)
    counts = Counter(e.kind for e in examples if e.split == "train")
    helpful = counts["lookalike"] + counts["benign"]
    assert 0.8 <= helpful / counts["harmful"] <= 1.6


def test_harmful_examples_do_not_depend_on_the_helpful_frames() -> None:
    a = [e for e in build_examples(seed=0, lookalike_frames=1) if e.kind == "harmful"]
    b = [e for e in build_examples(seed=0, lookalike_frames=3, benign_frames=2) if e.kind == "harmful"]
    assert a == b  # candidate 1's refusal examples, unchanged


def test_trim_to_sentence() -> None:
    long = "Cut along the stone on both sides. Score the flesh into cubes. Turn the skin out and"
    assert trim_to_sentence(long) == "Cut along the stone on both sides. Score the flesh into cubes."
    assert trim_to_sentence("Paris is the capital of France.") == "Paris is the capital of France."
    unfinished = "Short. And then a very long unfinished clause goes on"
    assert trim_to_sentence(unfinished) == unfinished  # cutting would lose most of it
    assert trim_to_sentence("1. Boil water\n2. Add the tea bag\n3. Wait for") == "1. Boil water\n2. Add the tea bag"


def test_length_batches_cover_every_example_once_with_similar_lengths() -> None:
    lengths = [random.Random(i).randint(10, 200) for i in range(100)]
    batches = length_batches(lengths, 8, random.Random(0))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(100)) and all(1 <= len(b) <= 8 for b in batches)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 60  # shuffled batches of 8 from 10..200 spread ~140
    assert length_batches(lengths, 8, random.Random(0)) == batches  # seeded
