"""Generate training dialogues and held-out evaluation items from the task modules."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from guardserve.training.records import Record
from guardserve.training.synthetic import everyday, idioms, safety, skills
from guardserve.training.synthetic.conversations import ConversationMaker
from guardserve.training.synthetic.skills import Dialogue

TaskFn = Callable[[random.Random, bool], Dialogue]
TASKS: dict[str, TaskFn] = {
    "arithmetic": skills.arithmetic,
    "units": skills.units,
    "facts": skills.facts,
    "harmful": safety.harmful,
    "lookalike": safety.lookalike,
}
EXACT_MATCH_TASKS = ("arithmetic", "units", "facts")
# Training-only tasks: no held-out split, never evaluated (see their modules).
TRAINING_ONLY: dict[str, TaskFn] = {"everyday": everyday.everyday, "idioms": idioms.idiom}


@dataclass(frozen=True)
class EvalItem:
    """A held-out prompt: ``expected`` is the exact reply for skill tasks, empty for harmful/look-alike ones."""

    task: str
    prompt: str
    expected: str


def generate_training(tasks: dict[str, int], seed: int, source: str = "synthetic") -> list[Record]:
    """``tasks`` maps a task name to the number of dialogues. Deterministic in ``seed``."""
    records: list[Record] = []
    for task in sorted(tasks):
        rng = random.Random(f"train:{task}:{seed}")
        make = _maker(task, seed)
        for _ in range(tasks[task]):
            d = make(rng, False)
            records.append(Record(source, messages=_messages(d), task=d.task))
    random.Random(f"shuffle:{seed}").shuffle(records)
    return records


def generate_eval(per_task: int, seed: int, tasks: tuple[str, ...] = tuple(TASKS)) -> list[EvalItem]:
    """Held-out items only (held-out templates and values), unique prompts, ``per_task`` of each at most."""
    items: list[EvalItem] = []
    for task in tasks:
        rng = random.Random(f"eval:{task}:{seed}")
        make = TASKS[task]
        seen: set[str] = set()
        attempts = 0
        while len(seen) < per_task and attempts < per_task * 50:
            attempts += 1
            d = make(rng, True)
            if d.user in seen:
                continue
            seen.add(d.user)
            items.append(EvalItem(task, d.user, d.reply if task in EXACT_MATCH_TASKS else ""))
    return items


def _maker(task: str, seed: int) -> TaskFn:
    if task == "pii_chat":
        maker = ConversationMaker(seed)
        return lambda rng, held: maker.make(rng)
    make = TASKS.get(task) or TRAINING_ONLY.get(task)
    if make is None:
        raise ValueError(f"unknown synthetic task {task!r}")
    return make


def _messages(d: Dialogue) -> list[dict[str, str]]:
    return [{"role": "user", "content": d.user}, {"role": "assistant", "content": d.reply}]
