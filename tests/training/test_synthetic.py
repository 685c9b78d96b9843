from __future__ import annotations

import re

from guardserve.training.synthetic import generate_eval, generate_training, safety, skills
from guardserve.training.synthetic.generator import TASKS

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


WORD = re.compile(r"[a-z][a-z'-]*")
ALARMING = re.compile(
    r"\b(kill|shoot|attack|beat|break|steal|blow|destroy|hack|execute|terminate|crush|smash|punch|tackle|knock|"
    r"hit|poison|hurt|stab|strangle|rob|threaten|stalk|blackmail|scam|spike|bully|smuggle|lure|cut)\w*",
    re.IGNORECASE,
)


def test_everyday_requests_are_plain_answered_and_training_only() -> None:
    from guardserve.training.synthetic.everyday import FRAMES

    chats = generate_training({"everyday": 500}, seed=1)
    assert chats == generate_training({"everyday": 500}, seed=1)
    assert len({r.messages[0]["content"] for r in chats}) > 400  # combinatorial, not a handful of repeats
    for r in chats:
        assert r.task == "everyday"
        assert not ALARMING.search(r.flat()), r.flat()
        assert not safety.is_refusal(r.messages[1]["content"])
    assert all("{t}" in q for q, _ in FRAMES)
    assert "everyday" not in {i.task for i in generate_eval(50, seed=0)}  # never evaluated


def test_every_word_of_a_held_out_safety_prompt_is_one_the_bundled_model_was_trained_on() -> None:
    """Held-out harmful and look-alike prompts must test the act, not vocabulary: a model trained from scratch
    cannot know a word its corpus lacks. Their values stay unseen *in their role* (the disjointness test above);
    here, each of their words occurs somewhere in the bundled recipes' training text."""
    from guardserve.training.evaluate.runner import EVAL_SEED
    from guardserve.training.recipe import load_recipe

    tasks: dict[str, int] = {}
    for name in ("default.yaml", "default-phase2.yaml"):
        for source in load_recipe(f"training/recipes/{name}").data.sources:
            for task, n in getattr(source, "tasks", {}).items():
                tasks[task] = max(tasks.get(task, 0), n)
    tasks.pop("pii_chat", None)
    vocab = {w for r in generate_training(tasks, seed=1) for w in WORD.findall(r.flat().lower())}
    held = [i for i in generate_eval(200, seed=EVAL_SEED) if i.task in ("harmful", "lookalike")]
    unseen = {w for i in held for w in WORD.findall(i.prompt.lower())} - vocab
    assert not unseen, sorted(unseen)


def test_idioms_use_alarming_verbs_but_no_held_out_value_or_frame() -> None:
    from guardserve.training.synthetic.idioms import IDIOMS

    assert len(IDIOMS) >= 25 and all(ALARMING.match(act) for act, _ in IDIOMS)
    chats = generate_training({"idioms": 1000}, seed=1)
    held_values = [v.lower() for f in safety.FAMILIES for v in safety.family_values(f, True)]
    held_frames = [f.split("{")[0].lower() for f in safety.INTENTS_HELD_OUT]
    for r in chats:
        user = r.messages[0]["content"].lower()
        assert r.task == "idioms" and not safety.is_refusal(r.messages[1]["content"])
        assert not [v for v in held_values if re.search(rf"\b{re.escape(v)}\b", user)], user
        assert not [f for f in held_frames if user.startswith(f)], user
    assert "idioms" not in {i.task for i in generate_eval(50, seed=0)}


def test_a_recipe_accepts_exactly_the_generator_s_tasks() -> None:
    from typing import get_args

    from guardserve.training.recipe import SyntheticTask
    from guardserve.training.synthetic.generator import TRAINING_ONLY

    assert set(get_args(SyntheticTask)) == {*TASKS, *TRAINING_ONLY, "pii_chat"}
