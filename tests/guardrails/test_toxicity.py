from __future__ import annotations

from pathlib import Path

import pytest

from guardserve.guardrails import ProfanityClassifier, build_classifier


def test_scores_in_order(toxicity: ProfanityClassifier) -> None:
    nice, rude = toxicity.scores(["Have a nice day!", "You are a stupid idiot."])
    assert nice < 0.2 and rude > 0.99
    assert toxicity.scores([]) == []


def test_unknown_classifier_kind() -> None:
    with pytest.raises(ValueError, match="unknown toxicity classifier"):
        build_classifier("magic")
    with pytest.raises(ValueError, match="local model directory"):
        build_classifier("transformers")


def test_local_transformers_classifier(tmp_path: Path) -> None:
    """The pluggable classifier: any local text-classification checkpoint (here a random-weight one we build)."""
    from guardserve.models.checkpoint import PAD_TOKEN, save_tokenizer, train_tokenizer
    from guardserve.models.hf import transformers_offline
    from guardserve.models.untrained import CORPUS

    transformers = transformers_offline()
    tokenizer = train_tokenizer(CORPUS.read_text().splitlines(), vocab_size=300)
    save_tokenizer(tokenizer, tmp_path, context_length=128)
    config = transformers.LlamaConfig(
        vocab_size=320,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=tokenizer.token_to_id(PAD_TOKEN),
        num_labels=2,
        id2label={0: "ok", 1: "toxic"},
        label2id={"ok": 0, "toxic": 1},
    )
    transformers.LlamaForSequenceClassification(config).save_pretrained(tmp_path)
    classifier = build_classifier("transformers", str(tmp_path))
    scores = classifier.scores(["Have a nice day!", "another text"])
    assert len(scores) == 2 and all(0.0 < s < 1.0 for s in scores)
    assert classifier.name == f"transformers:{tmp_path.name}"


def test_fast_path_equals_the_library(toxicity: ProfanityClassifier) -> None:
    from profanity_check import predict_prob

    texts = ["Have a nice day!", "You are a stupid idiot.", "I am a gay man", "sex education", "", "日本語", "x" * 5000]
    assert toxicity._fast is not None, "the direct scoring path was not used"
    assert toxicity.scores(texts) == pytest.approx(list(predict_prob(texts)), abs=1e-12)
