"""Toxicity classifiers behind one small protocol: a list of texts in, a probability of "toxic" per text out.

* :class:`ProfanityClassifier` (default): alt-profanity-check's calibrated linear SVM, offline, ~3.5 ms per call
  whether it scores 1 or 100 texts, hence the batching in :mod:`guardrails.batching`. Known weakness: it is a
  profanity scorer with strong identity-term bias ("I am a gay man" scores 0.95), so the default threshold is high.
* :class:`TransformersClassifier`: any Hugging Face text-classification model in a local directory (needs the
  ``engine`` extra); never downloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol


class ToxicityClassifier(Protocol):
    name: str

    def scores(self, texts: Sequence[str]) -> list[float]: ...


class ProfanityClassifier:
    name = "alt-profanity-check"

    def __init__(self) -> None:
        from profanity_check import predict_prob  # loads the model (joblib) on first import

        self._predict_prob = predict_prob

    def scores(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        return [float(p) for p in self._predict_prob(list(texts))]


class TransformersClassifier:
    """A local text-classification model; ``toxic_labels`` names the labels whose scores add up to "toxic"."""

    def __init__(self, path: str | Path, toxic_labels: Sequence[str] = ("toxic", "TOXIC", "LABEL_1")) -> None:
        from models.hf import transformers_offline

        transformers = transformers_offline()
        self.name = f"transformers:{Path(path).name}"
        self._pipeline: Any = transformers.pipeline("text-classification", model=str(path), top_k=None, device="cpu")
        self._toxic = set(toxic_labels)

    def scores(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        outputs = self._pipeline(list(texts), truncation=True)
        return [sum(float(o["score"]) for o in row if o["label"] in self._toxic) for row in outputs]


def build_classifier(kind: str = "profanity", path: str | None = None) -> ToxicityClassifier:
    if kind == "profanity":
        return ProfanityClassifier()
    if kind == "transformers":
        if not path:
            raise ValueError("the transformers toxicity classifier needs a local model directory ('path')")
        return TransformersClassifier(path)
    raise ValueError(f"unknown toxicity classifier {kind!r} (profanity, transformers)")
