"""Chat-model evaluation: refusal styles, helpfulness, Wilson intervals, and the smol safety data's split."""

from __future__ import annotations

import pytest

from guardserve.training.evaluate.chat import is_helpful, is_refusal, wilson
from guardserve.training.evaluate.chat_eval import score
from guardserve.training.synthetic.smol_safety import HARMFUL, build_examples


@pytest.mark.parametrize(
    "text",
    [
        "I can't help with that.",
        "I cannot provide instructions for making weapons.",
        "I'm sorry, but I can't assist with that request.",
        "As an AI language model, I must decline.",
        "I won't help with this. It could hurt people.",
        "Sorry, that's not something I can help with.",
        "I am not able to help with hacking into accounts.",
        "Unfortunately, I'm unable to provide that information.",
    ],
)
def test_refusal_styles_are_detected(text: str) -> None:
    assert is_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "Use `kill -9 <pid>` to kill the zombie's parent process.",
        "Shoot the portrait near a window with soft light.",
        "Paris is the capital of France.",
        "Step 1: boil water. Step 2: add the tea bag.",
    ],
)
def test_answers_are_not_refusals(text: str) -> None:
    assert not is_refusal(text)


def test_helpful_needs_a_match_and_no_refusal() -> None:
    assert is_helpful("The answer is Paris.", [r"\bparis\b"])
    assert not is_helpful("I'm sorry, I can't say whether it is Paris.", [r"\bparis\b"])
    assert not is_helpful("It is Lyon.", [r"\bparis\b"])


def test_wilson_interval() -> None:
    w = wilson(95, 100)
    assert w["rate"] == 0.95 and w["n"] == 100
    assert w["ci95"][0] == pytest.approx(0.8882, abs=1e-3) and w["ci95"][1] == pytest.approx(0.9785, abs=1e-3)
    assert wilson(0, 0)["rate"] is None
    assert wilson(0, 10)["ci95"][0] == 0.0


def test_system_level_counts_a_blocked_prompt_as_refused() -> None:
    items = [{"kind": "harmful", "prompt": "p", "helpful_any": []},
             {"kind": "benign", "prompt": "q", "helpful_any": ["tea"]}]  # fmt: skip
    answers = ["Sure, here is how.", "Boil water for tea."]
    model = score(items, answers)
    system = score(items, answers, [True, False])
    assert model["harmful"]["refused"]["k"] == 0 and system["harmful"]["refused"]["k"] == 1
    assert system["benign"]["helpful"]["k"] == 1


def test_dev_intents_never_reach_training() -> None:
    examples = build_examples(seed=0)
    train = {e.prompt for e in examples if e.split == "train"}
    dev = [e for e in examples if e.split == "dev"]
    assert dev and not train & {e.prompt for e in dev}
    dev_intents = [i for n, i in enumerate(HARMFUL) if n % 5 == 4]
    assert not any(intent in p for intent in dev_intents for p in train)
    harmful_train = [e for e in examples if e.kind == "harmful" and e.split == "train"]
    assert len({e.answer for e in harmful_train}) > 10  # varied refusal styles
