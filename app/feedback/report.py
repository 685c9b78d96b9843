"""``guardserve feedback report``: the ratings of an export folder, per model version, and the candidate-vs-stable
comparison that decides a promotion.

It reads ``DIR/ratings/ratings-v1.jsonl`` (written by :mod:`app.feedback.export`; never the dialogues) and writes::

    OUT/report.md        per version: n, up/down/neutral, up-rate [Wilson 95%], mean score, categories, first/last
                         seen; per time bucket; the comparison and its verdict
    OUT/report.json      the same numbers
    OUT/uprate.png       up-rate per version per time bucket, Wilson 95% error bars   (matplotlib, when installed)
    OUT/categories.png   category counts per version                                  (matplotlib, when installed)

A version is (``model``, ``checkpoint_sha256``), named ``model@sha[:12]``; a ``model_version`` / ``version_label``
field in the rows, when present, is shown as its label (and ``--stable``/``--candidate`` accept it). Rows without a
model (the response record had expired: ``record_kept`` false) cannot be attributed and are only counted.

Up-rate = up / (up + down): a neutral rating (a score of 3) counts in n but in neither side of the rate. The
comparison is candidate minus stable with Newcombe's hybrid score interval (method 10, Newcombe 1998), which
decides the verdict, and the pooled two-proportion z-test beside it. Imports nothing from the trainer.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from guardserve.app.feedback.export import MANIFEST_FILE, RATINGS_FILE
from guardserve.app.feedback.model import SCHEMA_VERSION

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile
Bucket = Literal["day", "hour"]
LABEL_FIELDS = ("model_version", "version_label")
RATINGS = ("up", "down", "neutral")


class ReportError(ValueError):
    """The report cannot be made (no export folder, a version that is not there, ...): a usage error."""


# -- statistics ------------------------------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (n = 0: the uninformative [0, 1])."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return max(0.0, (centre - half) / denominator), min(1.0, (centre + half) / denominator)


def newcombe_difference(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """p1 - p2 and Newcombe's hybrid score interval for it (Newcombe 1998, method 10: the two Wilson intervals)."""
    if n1 == 0 or n2 == 0:
        raise ValueError("a proportion with n = 0 has no difference")
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = wilson(k1, n1, z), wilson(k2, n2, z)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float]:
    """The pooled two-proportion z statistic for p1 - p2 and its two-sided p-value."""
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0  # both all-up or both all-down: nothing tells them apart
    stat = (k1 / n1 - k2 / n2) / se
    return stat, math.erfc(abs(stat) / math.sqrt(2))


# -- aggregation -----------------------------------------------------------------------------------------------


@dataclass
class Tally:
    up: int = 0
    down: int = 0
    neutral: int = 0

    @property
    def n(self) -> int:
        return self.up + self.down + self.neutral

    @property
    def rated(self) -> int:
        return self.up + self.down

    def add(self, rating: str) -> None:
        setattr(self, rating, getattr(self, rating) + 1)

    def to_json(self) -> dict[str, Any]:
        low, high = wilson(self.up, self.rated)
        return {
            "n": self.n,
            "up": self.up,
            "down": self.down,
            "neutral": self.neutral,
            "up_rate": self.up / self.rated if self.rated else None,
            "up_rate_ci95": [low, high] if self.rated else None,
        }


@dataclass
class Version:
    model: str
    checkpoint_sha256: str | None
    tally: Tally = field(default_factory=Tally)
    labels: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    scores: list[int] = field(default_factory=list)
    buckets: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    first: int = 0
    last: int = 0

    @property
    def label(self) -> str | None:
        return self.labels.most_common(1)[0][0] if self.labels else None

    @property
    def name(self) -> str:
        return f"{self.model}@{(self.checkpoint_sha256 or '')[:12] or self.label or 'unknown'}"

    def matches(self, wanted: str) -> bool:
        return bool(self.checkpoint_sha256 and self.checkpoint_sha256.startswith(wanted.lower())) or (
            wanted in self.labels
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.name,
            "model": self.model,
            "checkpoint_sha256": self.checkpoint_sha256,
            "label": self.label,
            **self.tally.to_json(),
            "mean_score": sum(self.scores) / len(self.scores) if self.scores else None,
            "scored": len(self.scores),
            "categories": dict(self.categories.most_common()),
            "first_seen": _iso(self.first),
            "last_seen": _iso(self.last),
            "buckets": {key: tally.to_json() for key, tally in sorted(self.buckets.items())},
        }


def bucket_of(created: int, bucket: Bucket) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.strftime("%Y-%m-%d") if bucket == "day" else moment.strftime("%Y-%m-%dT%H:00Z")


def load_versions(export: Path, bucket: Bucket, model: str | None) -> tuple[list[Version], dict[str, Any]]:
    """The versions rated in ``export`` (ordered by first seen), and what was read (counts, the manifest's time)."""
    ratings = export / RATINGS_FILE
    if not export.is_dir():
        raise ReportError(f"{export}: no such export folder (run `guardserve feedback export --out {export}`)")
    if not ratings.is_file():
        raise ReportError(f"{export}: no {RATINGS_FILE} (not a `guardserve feedback export` folder)")
    info: dict[str, Any] = {"export": str(export), "rows": 0, "malformed": 0, "unattributed": 0, "other_models": 0}
    manifest = export / MANIFEST_FILE
    if manifest.is_file():
        try:
            meta = json.loads(manifest.read_text())
        except ValueError:
            raise ReportError(f"{manifest}: not JSON (a damaged export folder)") from None
        if not isinstance(meta, dict) or meta.get("schema_version") != SCHEMA_VERSION:
            raise ReportError(f"{manifest}: schema {meta.get('schema_version')!r}, this report reads {SCHEMA_VERSION}")
        info["exported_at"] = _iso(meta["exported_at"]) if isinstance(meta.get("exported_at"), int) else None
    versions: dict[tuple[str, str | None, str | None], Version] = {}
    others: set[str] = set()
    with ratings.open("rb") as lines:
        for line in lines:
            if not line.strip():
                continue
            info["rows"] += 1
            try:
                row = json.loads(line)
                rating, created = row["rating"], row["created"]
                if row.get("version") != SCHEMA_VERSION or rating not in RATINGS or not isinstance(created, int):
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                info["malformed"] += 1
                continue
            label = next((str(row[f]) for f in LABEL_FIELDS if row.get(f)), None)
            if not row.get("model"):
                info["unattributed"] += 1
                continue
            if model is not None and row["model"] != model:
                info["other_models"] += 1
                others.add(str(row["model"]))
                continue
            sha = row.get("checkpoint_sha256") or None
            key = (row["model"], sha, None if sha else label)
            version = versions.get(key)
            if version is None:
                version = versions[key] = Version(row["model"], sha, first=created, last=created)
            version.tally.add(rating)
            version.buckets[bucket_of(created, bucket)].add(rating)
            if isinstance(row.get("categories"), list):
                version.categories.update(str(name) for name in row["categories"])
            if label:
                version.labels[label] += 1
            if isinstance(row.get("score"), int):
                version.scores.append(row["score"])
            version.first, version.last = min(version.first, created), max(version.last, created)
    if model is not None and not versions and others:
        raise ReportError(f"--model {model}: no ratings of it; models rated: {', '.join(sorted(others))}")
    return sorted(versions.values(), key=lambda v: (v.first, v.name)), info


# -- comparison ------------------------------------------------------------------------------------------------


def compare(stable: Version, candidate: Version, how: str) -> dict[str, Any]:
    s, c = stable.tally, candidate.tally
    result: dict[str, Any] = {
        "model": candidate.model,
        "stable": stable.name,
        "candidate": candidate.name,
        "chosen": how,
        "stable_counts": s.to_json(),
        "candidate_counts": c.to_json(),
    }
    if not s.rated or not c.rated:
        return {**result, "verdict": "not enough data (a version has no up or down rating)"}
    diff, low, high = newcombe_difference(c.up, c.rated, s.up, s.rated)
    stat, p = two_proportion_z(c.up, c.rated, s.up, s.rated)
    verdict = (
        "candidate better at 95%"
        if low > 0
        else "candidate worse at 95%"
        if high < 0
        else "no significant difference at 95%"
    )
    return {**result, "difference": diff, "difference_ci95": [low, high], "z": stat, "p_value": p, "verdict": verdict}


def comparisons(versions: list[Version], stable: str | None, candidate: str | None) -> list[dict[str, Any]]:
    """``--stable``/``--candidate`` (a checkpoint sha256 prefix or a label), or else, for every model with exactly
    two versions, the first seen as stable and the newer as candidate."""
    if (stable is None) != (candidate is None):
        raise ReportError("--stable and --candidate go together")
    if stable is not None and candidate is not None:
        chosen = [_one(versions, stable, "--stable"), _one(versions, candidate, "--candidate")]
        if chosen[0] is chosen[1]:
            raise ReportError(f"--stable {stable} and --candidate {candidate} are the same version ({chosen[0].name})")
        return [compare(chosen[0], chosen[1], "given (--stable, --candidate)")]
    by_model: dict[str, list[Version]] = defaultdict(list)
    for version in versions:
        by_model[version.model].append(version)
    return [
        compare(older, newer, f"automatic: the only two versions of {model}, the first seen as stable")
        for model, (older, newer) in ((m, vs) for m, vs in by_model.items() if len(vs) == 2)
    ]


def _one(versions: list[Version], wanted: str, flag: str) -> Version:
    found = [v for v in versions if v.matches(wanted)]
    if len(found) != 1:
        names = ", ".join(v.name for v in (found or versions)) or "none"
        what = "matches no version" if not found else "is ambiguous (give more of the sha256, or --model)"
        raise ReportError(f"{flag} {wanted} {what}; versions: {names}")
    return found[0]


# -- output ----------------------------------------------------------------------------------------------------


def build_report(
    export: Path,
    out: Path,
    *,
    model: str | None = None,
    stable: str | None = None,
    candidate: str | None = None,
    bucket: Bucket = "day",
) -> dict[str, Any]:
    """Read the export, write OUT/report.md, report.json and (with matplotlib) the two PNGs; return report.json."""
    versions, info = load_versions(export, bucket, model)
    compared = comparisons(versions, stable, candidate)
    if stable is None and not compared and versions:
        info["comparison_note"] = "no comparison: give --stable and --candidate (a model needs exactly two versions)"
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(versions, out)
    report = {
        "schema_version": SCHEMA_VERSION,
        "read": info,
        "bucket": bucket,
        "model": model,
        "up_rate": "up / (up + down); neutral counts in n only; intervals Wilson 95%",
        "versions": [v.to_json() for v in versions],
        "comparisons": compared,
        "plots": plots,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (out / "report.md").write_text(markdown(report))
    return report


def rate_text(counts: dict[str, Any]) -> str:
    if counts["up_rate"] is None:
        return f"– (0/{counts['up'] + counts['down']})"
    low, high = counts["up_rate_ci95"]
    return f"{counts['up_rate']:.3f} [{low:.3f}, {high:.3f}] ({counts['up']}/{counts['up'] + counts['down']})"


def markdown(report: dict[str, Any]) -> str:
    read = report["read"]
    lines = [
        "# Feedback report",
        "",
        f"Export `{read['export']}`" + (f" (exported {read['exported_at']})" if read.get("exported_at") else "") + ":",
        f"{read['rows']} ratings read, {read['unattributed']} without a model (response record not kept) and"
        f" {read['malformed']} malformed left out"
        + (f", {read['other_models']} of other models" if report["model"] else "")
        + ".",
        "Up-rate = up / (up + down): neutral ratings (a score of 3) count in n, not in the rate."
        " Rates: value [Wilson 95%] (up/(up + down)).",
        "",
        "## Versions",
        "",
        "| version | label | n | up | down | neutral | up-rate | mean score (n) | top categories | first seen"
        " | last seen |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in report["versions"]:
        score = f"{v['mean_score']:.2f} ({v['scored']})" if v["mean_score"] is not None else "–"
        top = ", ".join(f"{name} {count}" for name, count in list(v["categories"].items())[:3]) or "–"
        lines.append(
            f"| `{v['version']}` | {v['label'] or '–'} | {v['n']} | {v['up']} | {v['down']} | {v['neutral']}"
            f" | {rate_text(v)} | {score} | {top} | {v['first_seen']} | {v['last_seen']} |"
        )
    lines += ["", "## Candidate vs stable", ""]
    if not report["comparisons"]:
        lines.append(read.get("comparison_note", "No versions to compare."))
    for c in report["comparisons"]:
        lines += [
            f"Candidate `{c['candidate']}` vs stable `{c['stable']}` ({c['chosen']}).",
            "",
            "| | n | up | down | neutral | up-rate |",
            "|---|---|---|---|---|---|",
        ]
        for role in ("stable", "candidate"):
            t = c[f"{role}_counts"]
            lines.append(f"| {role} | {t['n']} | {t['up']} | {t['down']} | {t['neutral']} | {rate_text(t)} |")
        lines.append("")
        if "difference" in c:
            low, high = c["difference_ci95"]
            lines.append(
                f"Difference (candidate − stable): {c['difference']:+.3f}, Newcombe 95% [{low:+.3f}, {high:+.3f}];"
                f" two-proportion z = {c['z']:.2f}, p = {c['p_value']:.3g}."
            )
            lines.append("")
        lines += [f"**Verdict: {c['verdict']}.**", ""]
    lines += ["", f"## Over time (per {report['bucket']}, UTC)", ""]
    for v in report["versions"]:
        lines += [f"`{v['version']}`:", "", "| bucket | n | neutral | up-rate |", "|---|---|---|---|"]
        lines += [f"| {key} | {t['n']} | {t['neutral']} | {rate_text(t)} |" for key, t in v["buckets"].items()]
        lines.append("")
    if report["plots"]["skipped"]:
        lines.append(f"PNG plots skipped: {report['plots']['skipped']}.")
    else:
        lines += ["![up-rate per version over time](uprate.png)", "", "![categories per version](categories.png)"]
    return "\n".join(lines).rstrip() + "\n"


def _save(plt: Any, figure: Any, axes: Any, legend: bool, path: Path) -> None:
    if legend:
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plots(versions: list[Version], out: Path) -> dict[str, Any]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {"files": [], "skipped": "matplotlib is not installed (the `dev`/`train` extras have it)"}
    keys = sorted({key for v in versions for key in v.buckets})
    figure, axes = plt.subplots(figsize=(max(6.0, 0.8 * len(keys) + 3), 4))
    for i, version in enumerate(versions):
        shift = (i - (len(versions) - 1) / 2) * 0.08  # side by side, so the error bars do not hide each other
        xs, ys, below, above = [], [], [], []
        for x, key in enumerate(keys):
            tally = version.buckets.get(key)
            if tally is None or not tally.rated:
                continue
            rate = tally.up / tally.rated
            low, high = wilson(tally.up, tally.rated)
            xs.append(x + shift)
            ys.append(rate)
            below.append(rate - low)
            above.append(high - rate)
        label = version.name + (f" ({version.label})" if version.label else "")
        axes.errorbar(xs, ys, yerr=[below, above], marker="o", capsize=3, label=label)
    axes.set_xticks(range(len(keys)), keys, rotation=30, ha="right")
    axes.set_ylim(0, 1)
    axes.set_ylabel("up / (up + down), Wilson 95%")
    axes.set_title("Up-rate per model version")
    _save(plt, figure, axes, bool(versions), out / "uprate.png")

    names = sorted({name for v in versions for name in v.categories})
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(names) + 3), 4))
    width = 0.8 / max(1, len(versions))
    for i, version in enumerate(versions):
        axes.bar(
            [x + (i - (len(versions) - 1) / 2) * width for x in range(len(names))],
            [version.categories[name] for name in names],
            width,
            label=version.name,
        )
    axes.set_xticks(range(len(names)), names)
    axes.set_ylabel("ratings with the category")
    axes.set_title("Categories per model version")
    _save(plt, figure, axes, bool(versions), out / "categories.png")
    return {"files": ["uprate.png", "categories.png"], "skipped": None}


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
