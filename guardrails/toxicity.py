"""Toxicity classifiers behind one small protocol: a list of texts in, a probability of "toxic" per text out.

* :class:`ProfanityClassifier` (default): alt-profanity-check's calibrated linear SVM, offline, ~3.5 ms per call
  whether it scores 1 or 100 texts, hence the batching in :mod:`guardserve.guardrails.batching`. Known weakness: it is a
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
    """alt-profanity-check, scored directly.

    Its model is a ``CalibratedClassifierCV`` of linear SVMs with sigmoid calibration; sklearn's ``predict_proba``
    spends ~2.7 ms per call on checks and per-estimator bookkeeping. The same numbers come from one sparse product
    and a sigmoid: ``mean_i expit(-(a_i * (x . w_i + b_i) + c_i))``, about 10x faster. The fast path is checked
    against ``predict_proba`` when the classifier is built and is not used if they disagree.
    """

    name = "alt-profanity-check"

    def __init__(self) -> None:
        import numpy as np
        from profanity_check import profanity_check as pc  # loads the model (joblib) on first import

        self._vectorizer = pc.vectorizer
        self._slow = pc.predict_prob
        self._fast: tuple[Any, Any, Any, Any] | None = None
        try:
            members = pc.model.calibrated_classifiers_
            weights = np.vstack([m.estimator.coef_[0] for m in members]).T  # (features, members)
            intercepts = np.array([m.estimator.intercept_[0] for m in members])
            a = np.array([m.calibrators[0].a_ for m in members])
            b = np.array([m.calibrators[0].b_ for m in members])
            self._fast = (weights, intercepts, a, b)
            probe = ["Have a nice day!", "You are a stupid idiot.", "the quarterly report is attached"]
            if not np.allclose(self._scores_fast(probe), self._slow(probe), atol=1e-9):
                self._fast = None
        except (AttributeError, IndexError, ValueError):
            self._fast = None

    def _scores_fast(self, texts: Sequence[str]) -> list[float]:
        import numpy as np

        assert self._fast is not None
        weights, intercepts, a, b = self._fast
        decision = self._vectorizer.transform(list(texts)) @ weights + intercepts  # (texts, members)
        probabilities = 1.0 / (1.0 + np.exp(a * decision + b))
        return [float(p) for p in probabilities.mean(axis=1)]

    def scores(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        if self._fast is not None:
            return self._scores_fast(texts)
        return [float(p) for p in self._slow(list(texts))]


class TransformersClassifier:
    """A local text-classification model; ``toxic_labels`` names the labels whose scores add up to "toxic"."""

    def __init__(self, path: str | Path, toxic_labels: Sequence[str] = ("toxic", "TOXIC", "LABEL_1")) -> None:
        from guardserve.models.hf import transformers_offline

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
