"""Toxicity filtering with the guardrails classifier, batched."""

from __future__ import annotations

from guardserve.training.recipe import ToxicityFilterConfig
from guardserve.training.records import Record


def scored_texts(record: Record, config: ToxicityFilterConfig) -> list[str]:
    if record.messages is None:
        return [record.text or ""]
    return [m["content"] for m in record.messages if m["role"] in config.roles]


def record_scores(records: list[Record], config: ToxicityFilterConfig, batch: int = 512) -> list[float]:
    from guardserve.guardrails import build_classifier

    classifier = build_classifier(config.classifier, config.path)
    texts: list[str] = []
    owner: list[int] = []
    for i, record in enumerate(records):
        for text in scored_texts(record, config):
            texts.append(text)
            owner.append(i)
    scores = [0.0] * len(records)
    for start in range(0, len(texts), batch):
        for j, score in enumerate(classifier.scores(texts[start : start + batch])):
            i = owner[start + j]
            scores[i] = max(scores[i], score)
    return scores
