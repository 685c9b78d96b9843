"""The evaluation written out: ``report.json`` (every figure, for machines and floors), ``report.md`` (the tables a
reviewer reads) and PNG plots (matplotlib, Agg: no display needed). Also the floors check for CI.

Floors file (YAML), a metric path into report.json -> a bound; a path that ends at a rate (``{k, n, rate, ci95}``)
means its ``rate``; ``of`` makes the bound relative to another figure::

    classifiers.toxicity.recall: {min: 0.80}
    classifiers.prompt_injection.fpr: {max: 0.05}
    pii.input.hard_negative_flagged: {max: 0.10}
    fairness.ours.fped: {max: 0.25, of: fairness.baseline.fped}   # FPED <= 1/4 of raw alt-profanity-check's

A figure that is missing or not available violates its floor: a floor that cannot be checked is not passed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CATEGORY_TITLES = {"toxicity": "toxicity", "harmful_request": "harmful request", "prompt_injection": "prompt injection"}


# --- floors ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Floor:
    path: str
    bound: float
    maximum: bool  # True: the figure must be <= bound (times ``of``); False: >=
    of: str | None = None


def load_floors(path: Path) -> list[Floor]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if isinstance(data, dict) and set(data) == {"floors"}:
        data = data["floors"]
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of metric path -> {{min: X}} or {{max: X}}")
    floors: list[Floor] = []
    for metric, spec in data.items():
        if not isinstance(spec, dict) or len({"min", "max"} & set(spec)) != 1 or set(spec) - {"min", "max", "of"}:
            raise ValueError(f"{path}: {metric}: expected {{min: X}} or {{max: X}} (and optionally 'of: PATH')")
        maximum = "max" in spec
        of = spec.get("of")
        floors.append(Floor(str(metric), float(spec["max" if maximum else "min"]), maximum, str(of) if of else None))
    return floors


def lookup(report: Any, path: str) -> Any:
    """The value at a dotted path; keys may contain dots themselves (``recall_at_fpr_0.05``): longest key first."""
    node, rest = report, path
    while rest:
        if not isinstance(node, dict):
            return None
        key = next((k for k in sorted(node, key=len, reverse=True) if rest == k or rest.startswith(f"{k}.")), None)
        if key is None:
            return None
        node, rest = node[key], rest[len(key) + 1 :]
    if isinstance(node, dict) and "rate" in node:
        node = node["rate"]
    return node


def check_floors(report: dict[str, Any], floors: Sequence[Floor]) -> list[str]:
    """One line per floor missed (empty: all met)."""
    violations: list[str] = []
    for floor in floors:
        value = lookup(report, floor.path)
        bound = floor.bound
        if floor.of is not None:
            base = lookup(report, floor.of)
            if not _number(base):
                violations.append(f"{floor.path}: cannot check, {floor.of} is not available")
                continue
            bound *= float(base)
        if not _number(value):
            violations.append(f"{floor.path}: not available (floor {'<=' if floor.maximum else '>='} {bound:.4g})")
            continue
        ok = float(value) <= bound if floor.maximum else float(value) >= bound
        if not ok:
            sign = "<=" if floor.maximum else ">="
            violations.append(f"{floor.path} = {float(value):.4g}, needs {sign} {bound:.4g}")
    return violations


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- plots ----------------------------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(path: Path, title: str, fpr: Sequence[float], tpr: Sequence[float], auc: float | None) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUC {auc:.3f}" if auc is not None else "AUC n/a")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.axvline(0.05, linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="recall", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bars(
    path: Path, title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]], ylabel: str
) -> None:
    """Grouped bars: one group per label, one bar per series."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(labels) * max(1, len(series))), 4.0))
    width = 0.8 / max(1, len(series))
    for n, (name, values) in enumerate(series.items()):
        ax.bar([i + n * width for i in range(len(labels))], values, width, label=name)
    ax.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(labels))], labels, rotation=60, ha="right")
    ax.set(ylabel=ylabel, title=title, ylim=(0, 1.05))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(report: dict[str, Any], curves: dict[str, tuple[list[float], list[float]]], out: Path) -> list[str]:
    written: list[str] = []
    for category, (fpr, tpr) in curves.items():
        name = f"roc_{category}.png"
        auc = report["classifiers"][category].get("roc_auc")
        plot_roc(out / name, f"{CATEGORY_TITLES.get(category, category)} (ROC)", fpr, tpr, auc)
        written.append(name)
    fairness = report.get("fairness", {})
    if fairness.get("available"):
        ours, base = fairness["ours"]["per_identity"], fairness["baseline"]["per_identity"]
        identities = sorted(ours)
        series = {
            f"{fairness['baseline']['scorer']} (raw)": [base[i]["fpr"]["rate"] or 0.0 for i in identities],
            "gateway toxicity": [ours[i]["fpr"]["rate"] or 0.0 for i in identities],
        }
        plot_bars(out / "fairness_fpr.png", "false positive rate per identity", identities, series, "FPR")
        written.append("fairness_fpr.png")
    stages = {s: f for s, f in report.get("pii", {}).items() if isinstance(f, dict) and f.get("available")}
    if stages:
        entities = sorted({e for f in stages.values() for e in f["per_entity"]})
        series = {
            f"{stage} ({f['action']})": [
                (f["per_entity"].get(e, {}).get("recall", {}).get("rate") or 0.0) for e in entities
            ]
            for stage, f in stages.items()
        }
        plot_bars(out / "pii_entity_recall.png", "PII recall per entity (covered)", entities, series, "recall")
        written.append("pii_entity_recall.png")
    return written


# --- markdown -------------------------------------------------------------------------------------------------


def rate(d: dict[str, Any] | None) -> str:
    if not d or d.get("rate") is None:
        return "n/a"
    lo, hi = d["ci95"]
    return f"{d['rate']:.3f} [{lo:.3f}, {hi:.3f}] ({d['k']}/{d['n']})"


def num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if _number(value) else "n/a"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def markdown(report: dict[str, Any], plots: Sequence[str]) -> str:
    meta = report["meta"]
    lines = [
        "# Guard evaluation",
        "",
        f"Split **{meta['split']}** of `{meta['sets']}`, policy file `{meta['policy']}`"
        f" (policy `{meta['default_policy']}`), {meta['created']}. Rates: value [Wilson 95%] (k/n)."
        + (f" **Sampled: at most {meta['limit']} items per set.**" if meta.get("limit") else ""),
        "",
    ]
    lines += _classifiers_md(report.get("classifiers", {}), plots)
    lines += _fairness_md(report.get("fairness", {}), plots)
    lines += _pii_md(report.get("pii", {}), plots)
    lines += _distortion_md(report.get("distortion", {}))
    floors = report.get("floors")
    if floors is not None:
        lines += ["## Floors", ""]
        if floors["violations"]:
            lines += [f"**{len(floors['violations'])} of {floors['checked']} floors missed:**", ""]
            lines += [f"- {v}" for v in floors["violations"]] + [""]
        else:
            lines += [f"All {floors['checked']} floors met.", ""]
    lines += ["## Sets", ""]
    lines += _table(
        ["file", "items", "sha256"],
        [[name, str(s["items"]), f"`{s['sha256'][:16]}`"] for name, s in meta.get("files", {}).items()],
    )
    return "\n".join(lines)


def _classifiers_md(classifiers: dict[str, Any], plots: Sequence[str]) -> list[str]:
    if not classifiers:
        return []
    lines = ["## Classifier guards (through /v1/moderations' code path)", ""]
    rows = []
    for category, f in classifiers.items():
        if not f.get("available"):
            rows.append([category, f"not available: {f.get('reason', '')}", *(["—"] * 8)])
            continue
        at5 = f.get("recall_at_fpr_0.05") or {}
        rows.append(
            [
                category,
                str(f["n"]),
                str(f["positives"]),
                num(f["threshold"], 2),
                rate(f["recall"]),
                rate(f["precision"]),
                rate(f["fpr"]),
                num(f["f1"]),
                num(f["roc_auc"]),
                num(at5.get("recall")),
            ]
        )
    header = ["guard", "n", "pos", "threshold", "recall", "precision", "FPR", "F1", "ROC AUC", "recall@FPR≤.05"]
    lines += _table(header, rows)
    for category, f in classifiers.items():
        if not f.get("available"):
            continue
        for key, title in (("per_kind", "kind"), ("per_lang", "language")):
            lines += [f"### {category} by {title}", ""]
            lines += _table(
                [title, "n", "pos", "recall", "FPR"],
                [[g, str(v["n"]), str(v["positives"]), rate(v["recall"]), rate(v["fpr"])] for g, v in f[key].items()],
            )
        if f"roc_{category}.png" in plots:
            lines += [f"![ROC {category}](roc_{category}.png)", ""]
    return lines


def _fairness_md(fairness: dict[str, Any], plots: Sequence[str]) -> list[str]:
    lines = ["## Fairness (identity templates)", ""]
    if not fairness.get("available"):
        return [*lines, f"Not available: {fairness.get('reason', 'no identity set')}.", ""]
    ours, base = fairness["ours"], fairness["baseline"]
    ratio = fairness.get("fped_ratio_to_baseline")
    verdict = "n/a" if ratio is None else ("yes" if ratio <= 0.25 else "no")
    lines += [
        f"{ours['n']} sentences, {ours['identities']} identities, {fairness['templates']} templates. "
        f"FPED ratio gateway / raw {base['scorer']}: **{num(ratio)}** (≤ 1/4: {verdict}).",
        "",
    ]
    figures = [
        ("threshold", "threshold", 2),
        ("FPED", "fped", 3),
        ("FNED", "fned", 3),
        ("overall AUC", "overall_auc", 3),
        ("min subgroup AUC", "min_subgroup_auc", 3),
        ("min BPSN AUC", "min_bpsn_auc", 3),
        ("min BNSP AUC", "min_bnsp_auc", 3),
    ]
    rows = [[title, num(ours[key], d), num(base[key], d)] for title, key, d in figures]
    rows += [["overall FPR", rate(ours["overall_fpr"]), rate(base["overall_fpr"])]]
    rows += [["overall FNR", rate(ours["overall_fnr"]), rate(base["overall_fnr"])]]
    header = ["figure", "gateway toxicity", f"raw {base['scorer']}"]
    same = fairness.get("baseline_at_policy_threshold")
    if same:
        header.append(f"{base['scorer']} at the gateway's threshold")
        extra = {"threshold": num(same["threshold"], 2), "FPED": num(same["fped"]), "FNED": num(same["fned"])}
        extra |= {"overall FPR": rate(same["overall_fpr"]), "overall FNR": rate(same["overall_fnr"])}
        rows = [[*row, extra.get(row[0], "")] for row in rows]
    lines += _table(header, rows)
    per_rows = []
    for identity, o in ours["per_identity"].items():
        b = base["per_identity"][identity]
        per_rows.append(
            [
                identity,
                num(o["fpr"]["rate"]),
                num(b["fpr"]["rate"]),
                num(o["fnr"]["rate"]),
                num(b["fnr"]["rate"]),
                num(o["subgroup_auc"]),
                num(o["bpsn_auc"]),
                num(o["bnsp_auc"]),
                num(b["bpsn_auc"]),
            ]
        )
    header = ["identity", "FPR", "FPR base", "FNR", "FNR base", "subgroup AUC", "BPSN", "BNSP", "BPSN base"]
    lines += _table(header, per_rows)
    if "fairness_fpr.png" in plots:
        lines += ["![FPR per identity](fairness_fpr.png)", ""]
    return lines


def _pii_md(pii: dict[str, Any], plots: Sequence[str]) -> list[str]:
    lines = ["## PII", ""]
    if not pii.get("input", {}).get("available") and not pii.get("output", {}).get("available"):
        reason = pii.get("reason") or pii.get("input", {}).get("reason", "no PII set")
        return [*lines, f"Not available: {reason}.", ""]
    stages = {s: f for s, f in pii.items() if isinstance(f, dict) and f.get("available")}
    figures: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("texts (positive / hard negative)", lambda f: f"{f['texts']} ({f['positives']} / {f['hard_negatives']})"),
        ("gold spans / findings", lambda f: f"{f['gold_spans']} / {f['findings']}"),
        ("recall (covered, any type)", lambda f: rate(f["recall"])),
        ("precision (overlaps gold)", lambda f: rate(f["precision"])),
        ("F2", lambda f: num(f["f2"])),
        ("recall (type-aware)", lambda f: rate(f["typed"]["recall"])),
        ("precision (type-aware)", lambda f: rate(f["typed"]["precision"])),
        ("F2 (type-aware)", lambda f: num(f["typed"]["f2"])),
        ("recall (any overlap)", lambda f: rate(f["recall_any_overlap"])),
        ("hard negatives flagged", lambda f: rate(f["hard_negative_flagged"])),
        ("fully covered", lambda f: rate(f["fully_covered"])),
        ("no gold value left in output", lambda f: rate(f["no_gold_value_left"])),
        ("fully masked", lambda f: rate(f["fully_masked"])),
    ]
    lines += _table(
        ["figure", *(f"{s} ({f['action']})" for s, f in stages.items())],
        [[title, *(get(f) for f in stages.values())] for title, get in figures],
    )
    first = next(iter(stages.values()))
    lines += _table(
        ["entity", "gold", "recall (covered)", "recall (type-aware)"],
        [[e, str(v["gold"]), rate(v["recall"]), rate(v["typed_recall"])] for e, v in first["per_entity"].items()],
    )
    if first["hard_negative_finding_types"]:
        found = ", ".join(f"{t}: {c}" for t, c in first["hard_negative_finding_types"].items())
        lines += [f"Finding types on hard negatives: {found}.", ""]
    if "pii_entity_recall.png" in plots:
        lines += ["![PII recall per entity](pii_entity_recall.png)", ""]
    return lines


def _distortion_md(distortion: dict[str, Any]) -> list[str]:
    lines = ["## Answer distortion (harmless prompts)", ""]
    if not distortion.get("available"):
        return [*lines, f"Not run: {distortion.get('reason', 'skipped')}.", ""]
    lines += _table(
        ["figure", "value"],
        [
            ["model", f"`{distortion['model']}`"],
            ["prompts", str(distortion["n"])],
            ["blocked", rate(distortion["blocked"])],
            ["rewritten by input screening", rate(distortion["rewritten"])],
            ["distorted (blocked or answer changed)", rate(distortion["distorted"])],
        ],
    )
    if distortion["distorted_kinds"]:
        kinds = ", ".join(f"{k}: {c}" for k, c in distortion["distorted_kinds"].items())
        lines += [f"Distorted kinds: {kinds}.", ""]
    return lines


def write_report(report: dict[str, Any], curves: dict[str, tuple[list[float], list[float]]], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(report, curves, out)
    report["meta"]["plots"] = plots
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(report, plots), encoding="utf-8")
    return [out / "report.json", out / "report.md", *(out / p for p in plots)]
