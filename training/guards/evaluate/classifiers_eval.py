"""The classifier guards (toxicity, harmful_request, prompt_injection) measured the way clients meet them: every text
goes through :meth:`guardrails.runtime.Guardrails.moderate`, the code behind ``POST /v1/moderations`` (the default
policy's thresholds, one score per category). A flag there is the guard's decision at the policy's threshold; the
scores give the threshold-free figures (ROC AUC, recall at FPR <= 5%).

A category the gateway does not score yet is reported as not available, never as a failure: the report is the
same command before and after a guard lands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guardserve.training.guards.evaluate.metrics import binary_summary, grouped, recall_at_fpr, roc_auc, roc_curve

if TYPE_CHECKING:
    from guardserve.guardrails.policy import PolicySpec
    from guardserve.guardrails.runtime import Guardrails, ModerationResult

CATEGORIES = ("toxicity", "harmful_request", "prompt_injection")
MODERATION_BATCH = 64  # texts per moderate() call: one gate slot each, the classifier batches within


@dataclass(frozen=True)
class Labelled:
    text: str
    label: int
    kind: str = "unknown"
    lang: str = "unknown"

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Labelled:
        return cls(
            str(row["text"]), int(row["label"]), str(row.get("kind", "unknown")), str(row.get("lang", "unknown"))
        )


@dataclass
class CategoryResult:
    figures: dict[str, Any]  # what report.json carries
    curve: tuple[list[float], list[float]] | None = None  # (fpr, tpr) for the ROC plot


async def moderate_all(guardrails: Guardrails, texts: Sequence[str]) -> list[ModerationResult]:
    results: list[ModerationResult] = []
    for start in range(0, len(texts), MODERATION_BATCH):
        results += await guardrails.moderate(list(texts[start : start + MODERATION_BATCH]))
    return results


def policy_threshold(spec: PolicySpec, category: str) -> float | None:
    """The threshold moderation uses for ``category``: the input stage's guard, else the output stage's."""
    for stage in (spec.input, spec.output):
        guard = getattr(stage, category, None)
        threshold = getattr(guard, "threshold", None)
        if isinstance(threshold, float):
            return threshold
    return None


def not_available(reason: str) -> CategoryResult:
    return CategoryResult({"available": False, "reason": reason})


async def evaluate_category(guardrails: Guardrails, category: str, rows: list[Labelled] | None) -> CategoryResult:
    if rows is None:
        return not_available("no evaluation set")
    if not rows:
        return not_available("the evaluation set is empty")
    results = await moderate_all(guardrails, [r.text for r in rows])
    if category not in results[0].scores:
        return not_available(f"the gateway's moderation has no {category!r} category")
    return CategoryResult(*category_figures(rows, results, category, guardrails))


def category_figures(
    rows: Sequence[Labelled], results: Sequence[ModerationResult], category: str, guardrails: Guardrails
) -> tuple[dict[str, Any], tuple[list[float], list[float]]]:
    labels = [r.label for r in rows]
    scores = [res.scores[category] for res in results]
    flags = [res.categories[category] for res in results]
    fpr, tpr, _ = roc_curve(labels, scores)
    figures = {
        "available": True,
        "threshold": policy_threshold(guardrails.policy().spec, category),
        **binary_summary(labels, flags),
        "roc_auc": roc_auc(labels, scores),
        "recall_at_fpr_0.05": recall_at_fpr(labels, scores, 0.05),
        "per_kind": grouped(labels, flags, [r.kind for r in rows]),
        "per_lang": grouped(labels, flags, [r.lang for r in rows]),
    }
    return figures, (fpr, tpr)
