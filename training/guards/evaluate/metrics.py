"""Binary-classification figures with their uncertainty: evaluation sets are small, so every rate carries a Wilson
95% interval (it stays inside [0, 1] and behaves at 0 and n, unlike the normal approximation), and ROC AUC is the
Mann-Whitney statistic (ties count half), so no threshold has to be chosen to compare two scorers.

Everything here is plain numpy on lists: no sklearn, so the numbers are checkable by hand (see the tests).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for ``k`` successes in ``n`` trials; None when there are no trials."""
    if n <= 0:
        return None
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact at the edges (no 5e-17 from rounding)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


@dataclass(frozen=True)
class Rate:
    """``k`` of ``n``, with its Wilson interval (``rate`` None when ``n`` is 0: the figure does not exist)."""

    k: int
    n: int

    @property
    def rate(self) -> float | None:
        return self.k / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        ci = wilson(self.k, self.n)
        return {"k": self.k, "n": self.n, "rate": self.rate, "ci95": list(ci) if ci else None}


def f_beta(precision: float | None, recall: float | None, beta: float = 1.0) -> float | None:
    """F-beta from precision and recall (beta 2 weighs recall four times as much: a missed PII value costs more than
    a false alarm). None when either is undefined; 0 when both are 0."""
    if precision is None or recall is None:
        return None
    b2 = beta * beta
    denom = b2 * precision + recall
    return (1 + b2) * precision * recall / denom if denom else 0.0


def confusion(labels: Sequence[int], predictions: Sequence[bool]) -> tuple[int, int, int, int]:
    """(tp, fp, tn, fn)."""
    tp = fp = tn = fn = 0
    for y, p in zip(labels, predictions, strict=True):
        if y and p:
            tp += 1
        elif y:
            fn += 1
        elif p:
            fp += 1
        else:
            tn += 1
    return tp, fp, tn, fn


def binary_summary(labels: Sequence[int], predictions: Sequence[bool]) -> dict[str, Any]:
    """n, positives, recall, precision, FPR (each a :class:`Rate` dict) and F1 at one operating point."""
    tp, fp, tn, fn = confusion(labels, predictions)
    recall, precision, fpr = Rate(tp, tp + fn), Rate(tp, tp + fp), Rate(fp, fp + tn)
    return {
        "n": len(labels),
        "positives": tp + fn,
        "negatives": fp + tn,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "recall": recall.to_dict(),
        "precision": precision.to_dict(),
        "fpr": fpr.to_dict(),
        "f1": f_beta(precision.rate, recall.rate),
    }


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return np.asarray((sums / counts)[inverse])


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    """P(score of a random positive > score of a random negative), ties counting half; None without both classes."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(labels: Sequence[int], scores: Sequence[float]) -> tuple[list[float], list[float], list[float]]:
    """(fpr, tpr, thresholds): one point per distinct score, flagging ``score >= threshold``, from (0, 0) (threshold
    +inf) to (1, 1). Empty lists without both classes."""
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return [], [], []
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_run = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the last index of each run of equal scores
    tps = np.cumsum(y)[last_of_run]
    fps = (last_of_run + 1) - tps
    fpr = [0.0, *(fps / n_neg).tolist()]
    tpr = [0.0, *(tps / n_pos).tolist()]
    thresholds = [math.inf, *s[last_of_run].tolist()]
    return fpr, tpr, thresholds


def recall_at_fpr(labels: Sequence[int], scores: Sequence[float], max_fpr: float = 0.05) -> dict[str, Any] | None:
    """The best recall of any threshold whose FPR is at most ``max_fpr`` (and that threshold): how much a scorer
    catches if it may bother at most one benign text in twenty."""
    fpr, tpr, thresholds = roc_curve(labels, scores)
    if not fpr:
        return None
    best = max((i for i in range(len(fpr)) if fpr[i] <= max_fpr), key=lambda i: (tpr[i], -fpr[i]))
    threshold = thresholds[best]
    return {
        "max_fpr": max_fpr,
        "recall": tpr[best],
        "fpr": fpr[best],
        "threshold": None if math.isinf(threshold) else threshold,
    }


def grouped(labels: Sequence[int], predictions: Sequence[bool], groups: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Recall and FPR per group (a kind, a language): n, positives and the two rates (None where undefined)."""
    out: dict[str, dict[str, Any]] = {}
    for group in sorted(set(groups)):
        idx = [i for i, g in enumerate(groups) if g == group]
        tp, fp, tn, fn = confusion([labels[i] for i in idx], [predictions[i] for i in idx])
        out[group] = {
            "n": len(idx),
            "positives": tp + fn,
            "recall": Rate(tp, tp + fn).to_dict(),
            "fpr": Rate(fp, fp + tn).to_dict(),
        }
    return out
