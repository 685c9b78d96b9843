from __future__ import annotations

import pytest

from guardrails import ProfanityClassifier, build_classifier


def test_scores_in_order(toxicity: ProfanityClassifier) -> None:
    nice, rude = toxicity.scores(["Have a nice day!", "You are a stupid idiot."])
    assert nice < 0.2 and rude > 0.99
    assert toxicity.scores([]) == []


def test_unknown_classifier_kind() -> None:
    with pytest.raises(ValueError, match="unknown toxicity classifier"):
        build_classifier("magic")
    with pytest.raises(ValueError, match="local model directory"):
        build_classifier("transformers")
