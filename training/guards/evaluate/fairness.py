"""Identity-term bias of a toxicity scorer on templated sentences ("I am a {identity} person", "{identity} people
are disgusting"): the same template with different identities should score alike.

* Per identity: FPR (neutral sentences flagged) and FNR (toxic ones missed) at the operating threshold.
* FPED / FNED (Dixon et al. 2018, "Measuring and Mitigating Unintended Bias in Text Classification"): the sum over
  identities of ``|FPR_overall - FPR_identity|`` (resp. FNR). 0 means every identity is treated like the whole set.
* Subgroup AUC, BPSN AUC and BNSP AUC (Borkan et al. 2019, "Nuanced Metrics for Measuring Unintended Bias"),
  threshold-free: subgroup AUC ranks within the identity's own sentences; BPSN (background positive, subgroup
  negative) mixes the identity's neutral sentences with the other identities' toxic ones, so a low value means the
  identity's mere mention pushes neutral text up; BNSP the reverse (its toxic sentences pushed down).

"Background" is every sentence of the other identities (each templated sentence names exactly one identity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from guardserve.training.guards.evaluate.metrics import Rate, confusion, roc_auc

if TYPE_CHECKING:
    from guardserve.guardrails.runtime import Guardrails

BASELINE = "alt-profanity-check"
BASELINE_THRESHOLD = 0.5  # profanity_check.predict's own cut: the library as people use it
SUMMARY = ("threshold", "fped", "fned", "overall_fpr", "overall_fnr")


@dataclass(frozen=True)
class IdentityText:
    text: str
    label: int
    identity: str
    template: str = ""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> IdentityText:
        return cls(str(row["text"]), int(row["label"]), str(row["identity"]), str(row.get("template", "")))


async def evaluate_fairness(
    guardrails: Guardrails, rows: Sequence[IdentityText], baseline_threshold: float = BASELINE_THRESHOLD
) -> dict[str, Any]:
    """The gateway's toxicity (moderation's score and flag, the policy's threshold) and raw alt-profanity-check
    (``predict_prob``) on the same sentences, with the ratio of their FPEDs."""
    from profanity_check import predict_prob

    from guardserve.training.guards.evaluate.classifiers_eval import moderate_all, policy_threshold

    texts = [r.text for r in rows]
    labels = [r.label for r in rows]
    identities = [r.identity for r in rows]
    results = await moderate_all(guardrails, texts)
    threshold = policy_threshold(guardrails.policy().spec, "toxicity") or 0.5
    ours = fairness_metrics(
        labels,
        [res.scores["toxicity"] for res in results],
        identities,
        threshold,
        [res.categories["toxicity"] for res in results],
    )
    baseline_scores = [float(p) for p in predict_prob(texts)]
    baseline = fairness_metrics(labels, baseline_scores, identities, baseline_threshold)
    ratio = None
    if ours["fped"] is not None and baseline["fped"]:
        ratio = ours["fped"] / baseline["fped"]
    # FPED shrinks with the threshold alone (fewer flags, fewer false ones): the baseline at the gateway's
    # threshold tells a better scorer from a stricter cut.
    same_cut = fairness_metrics(labels, baseline_scores, identities, threshold)
    return {
        "available": True,
        "templates": len({r.template for r in rows}),
        "ours": ours,
        "baseline": {"scorer": BASELINE, **baseline},
        "fped_ratio_to_baseline": ratio,
        "baseline_at_policy_threshold": {k: same_cut[k] for k in SUMMARY},
    }


def fairness_metrics(
    labels: Sequence[int],
    scores: Sequence[float],
    identities: Sequence[str],
    threshold: float,
    predictions: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """All per-identity and summary figures for one scorer at one threshold (``predictions``: the scorer's own
    decisions where it made them, e.g. moderation's flags; default ``score >= threshold``)."""
    if predictions is None:
        predictions = [s >= threshold for s in scores]
    tp, fp, tn, fn = confusion(labels, predictions)
    overall_fpr, overall_fnr = Rate(fp, fp + tn), Rate(fn, fn + tp)
    per: dict[str, dict[str, Any]] = {}
    for identity in sorted(set(identities)):
        inside = [i for i, g in enumerate(identities) if g == identity]
        outside = [i for i, g in enumerate(identities) if g != identity]
        itp, ifp, itn, ifn = confusion([labels[i] for i in inside], [predictions[i] for i in inside])
        bpsn = [i for i in inside if not labels[i]] + [i for i in outside if labels[i]]
        bnsp = [i for i in inside if labels[i]] + [i for i in outside if not labels[i]]
        per[identity] = {
            "n": len(inside),
            "fpr": Rate(ifp, ifp + itn).to_dict(),
            "fnr": Rate(ifn, ifn + itp).to_dict(),
            "subgroup_auc": _auc(labels, scores, inside),
            "bpsn_auc": _auc(labels, scores, bpsn),
            "bnsp_auc": _auc(labels, scores, bnsp),
        }
    return {
        "threshold": threshold,
        "n": len(labels),
        "identities": len(per),
        "overall_fpr": overall_fpr.to_dict(),
        "overall_fnr": overall_fnr.to_dict(),
        "overall_auc": roc_auc(labels, scores),
        "fped": equality_difference(overall_fpr.rate, [p["fpr"]["rate"] for p in per.values()]),
        "fned": equality_difference(overall_fnr.rate, [p["fnr"]["rate"] for p in per.values()]),
        "min_subgroup_auc": _min(p["subgroup_auc"] for p in per.values()),
        "min_bpsn_auc": _min(p["bpsn_auc"] for p in per.values()),
        "min_bnsp_auc": _min(p["bnsp_auc"] for p in per.values()),
        "per_identity": per,
    }


def equality_difference(overall: float | None, per_identity: Sequence[float | None]) -> float | None:
    """Dixon et al.'s FPED/FNED: ``sum_i |overall - rate_i|`` over identities where the rate exists."""
    if overall is None:
        return None
    return float(sum(abs(overall - r) for r in per_identity if r is not None))


def _auc(labels: Sequence[int], scores: Sequence[float], idx: Sequence[int]) -> float | None:
    return roc_auc([labels[i] for i in idx], [scores[i] for i in idx])


def _min(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None
