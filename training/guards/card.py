"""The semantic guard artifact's card (``card.md``): what it is, what it was trained on, how it did on dev, limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _row(task: str, m: dict[str, Any]) -> str:
    look = "n/a" if m.get("lookalike_fpr") is None else f"{m['lookalike_fpr']:.3f}"
    return (
        f"| {task} | {m['n']} ({m['positive']} pos) | {m['roc_auc']} | {m['average_precision']} | "
        f"{m['threshold']:.4g} | {m['precision']:.3f} | {m['recall']:.3f} | {m['fpr']:.3f} | {look} |"
    )


def write_card(out: Path, manifest: dict[str, Any]) -> None:
    encoder = manifest["encoder"]
    data = manifest["data"]
    training = manifest["training"]
    fallback = [t for t, d in data["dev"].items() if d["source"].startswith("fallback")]
    lines = [
        f"# {manifest['name']}: semantic guard classifiers",
        "",
        "Linear heads (logistic regression, Platt-calibrated) on sentence-encoder features, one per category: "
        + ", ".join(f"`{t}`" for t in manifest["tasks"])
        + ". Loaded by `guardrails/semantic.py`; written by `guardserve train guards`.",
        "",
        "## Encoder",
        "",
        f"`{encoder['name']}` ({encoder['kind']}, {encoder['dim']} dims, sha256 `{encoder['sha256'][:16]}…`), "
        f"from `{encoder['source']['model']}` (licence {encoder['source']['license']}, via the "
        f"`{encoder['source']['package']}` package).",
        f"Features: {training['features_chosen']} (mean dev average precision compared: "
        + ", ".join(f"{k} {v}" for k, v in training["features_compared"].items())
        + ").",
        "",
        "## Data",
        "",
        f"Training data: `{data['source']}`, seed {data['seed']}, identity balance "
        f"{'on' if data['identity_balance'] else 'OFF'}. Never the evaluation sets.",
        "",
        "| task | train (pos) | dev (pos) | dev source |",
        "|---|---|---|---|",
    ]
    for task in manifest["tasks"]:
        tr, dv = data["train"][task], data["dev"][task]
        lines.append(f"| {task} | {tr['n']} ({tr['positive']}) | {dv['n']} ({dv['positive']}) | {dv['source']} |")
    lines += [
        "",
        "## Dev results (thresholds chosen on this split: optimistic; the test split is reported elsewhere)",
        "",
        "| task | dev n | ROC AUC | AP | threshold | precision | recall | FPR | look-alike FPR |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [_row(t, manifest["dev_metrics"][t]) for t in manifest["tasks"]]
    lines += ["", "Threshold rules:", ""]
    for task, rule in manifest["rules"].items():
        met = manifest["dev_metrics"][task].get("targets_met")
        lines.append(f"- `{task}`: {rule}: " + ("met on dev" if met else "**NOT met on dev**"))
    probe = manifest.get("probe") or {}
    if probe.get("n"):
        lines += [
            "",
            f"Overconfidence check: {probe['n']} held-out harmless everyday texts "
            + "(`guardserve.training.guards.data.PROBE`); "
            + "highest scores "
            + ", ".join(f"{t} {v}" for t, v in probe["max_score"].items())
            + ". "
            + (
                f"**Flagged by {', '.join(probe['overconfident'])}**: {probe['flagged']}."
                if probe["overconfident"]
                else "None flagged at the thresholds."
            ),
        ]
    if fallback:
        lines += [
            "",
            f"**Warning**: no dev file for {', '.join(fallback)}; thresholds and metrics there come from a held-out "
            "share of the *training* data (same generator): they say nothing about real traffic.",
        ]
    lines += [
        "",
        "## Limits",
        "",
        '- A static encoder averages token vectors: word order and negation are mostly lost ("I will not hurt you" '
        'is close to "I will hurt you").',
        f"- Long texts are scored in {manifest['windows']['chars']}-character windows overlapping by "
        f"{manifest['windows']['overlap']}, the highest window wins; a short attack inside a long benign text can "
        "still be diluted below the threshold.",
        "- English vocabulary (MiniLM's WordPiece); other languages are scored, with less reliability.",
        "- Trained on synthetic data; thresholds are only as good as the dev split they were chosen on.",
        "",
    ]
    (out / "card.md").write_text("\n".join(lines))
    (out / "card.md").chmod(0o644)


def append_section(out: Path, markdown: str) -> None:
    """Add a section (e.g. the candidates compared on dev) to an artifact's card and re-record its sha256."""
    import json

    from guardserve.models.checkpoint import sha256_file

    card = out / "card.md"
    card.write_text(card.read_text().rstrip("\n") + "\n\n" + markdown.strip("\n") + "\n")
    manifest_file = out / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["files"]["card.md"] = sha256_file(card)
    manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")
