from __future__ import annotations

import re

from training.synthetic import generate_eval, generate_training, safety, skills
from training.synthetic.generator import TASKS

COUNTS = {"arithmetic": 400, "units": 200, "facts": 200, "harmful": 200, "lookalike": 200, "pii_chat": 50}


def _users(records: list) -> set[str]:  # type: ignore[type-arg]
    return {r.messages[0]["content"] for r in records}


def test_same_seed_same_data_and_other_seed_other_data() -> None:
    a = generate_training(COUNTS, seed=3)
    b = generate_training(COUNTS, seed=3)
    c = generate_training(COUNTS, seed=4)
    assert [r.to_json() for r in a] == [r.to_json() for r in b]
    assert [r.to_json() for r in a] != [r.to_json() for r in c]
    assert sum(1 for r in a if r.task == "pii_chat") == 50


def test_held_out_arithmetic_pairs_never_appear_in_training() -> None:
    train = generate_training({"arithmetic": 5000}, seed=1)
    pairs = set()
    for r in train:
        a, op, b = re.match(r"(\d+) ([+-]) (\d+)", r.messages[1]["content"]).groups()  # type: ignore[union-attr]
        pairs.add((op, *sorted((int(a), int(b)))) if op == "+" else (op, int(a), int(b)))
    held = [i for i in generate_eval(300, seed=0) if i.task == "arithmetic"]
    assert len(held) == 300
    for item in held:
        a, op, b = re.match(r"(\d+) ([+-]) (\d+)", item.expected).groups()  # type: ignore[union-attr]
        key = (op, *sorted((int(a), int(b)))) if op == "+" else (op, int(a), int(b))
        assert key not in pairs


def test_held_out_templates_are_disjoint_from_training_ones() -> None:
    assert not set(skills.ADD_TRAIN) & set(skills.ADD_HELD_OUT)
    assert not set(skills.SUB_TRAIN) & set(skills.SUB_HELD_OUT)
    assert not set(skills.UNITS_TRAIN) & set(skills.UNITS_HELD_OUT)
    for relation in skills.FACTS:
        assert not set(skills.FACT_TRAIN[relation]) & set(skills.FACT_HELD_OUT[relation])
    assert not set(safety.HARMFUL_TRAIN) & set(safety.HARMFUL_HELD_OUT)
    for family in safety.FAMILIES:
        assert not set(family.train) & set(family.held_out)
        assert not set(safety.family_values(family, False)) & set(safety.family_values(family, True))
    train = _users(generate_training({t: 300 for t in TASKS}, seed=2))
    assert not train & {i.prompt for i in generate_eval(200, seed=0)}


def test_refusals_are_varied_and_detected_and_benign_answers_are_not_refusals() -> None:
    assert len(safety.HARMFUL_TRAIN) >= 30
    assert len(set(safety.REFUSALS)) >= 8 and all(safety.is_refusal(r) for r in safety.REFUSALS)
    assert not any(safety.is_refusal(family.answer) for family in safety.FAMILIES)
    assert not safety.is_refusal("47 + 38 = 85")


def test_eval_sets_are_big_enough_to_measure() -> None:
    items = generate_eval(200, seed=0)
    count = {t: sum(1 for i in items if i.task == t) for t in TASKS}
    assert count["arithmetic"] == count["units"] == 200
    assert count["harmful"] >= 100 and count["lookalike"] >= 100 and count["facts"] >= 60
    assert all(i.expected for i in items if i.task in ("arithmetic", "units", "facts"))


def test_conversations_carry_faker_personal_data() -> None:
    chats = [r for r in generate_training({"pii_chat": 200}, seed=5)]
    text = " ".join(r.flat() for r in chats)
    assert re.search(r"[\w.+-]+@[\w-]+\.\w+", text)  # e-mails
    assert re.search(r"4\d{3} \d{4} \d{4} \d{4}", text)  # card numbers
