"""``guardserve train guards``: one calibrated linear head per guard category on sentence-encoder features.

For each task (``toxicity``, ``harmful_request``, ``prompt_injection``):

1. Training data from ``guardserve.training.guards.data.build(task, seed)`` (never the evaluation sets).
2. Features: the encoder's vector, optionally concatenated with hashed character n-grams (and, with
   ``HeadOptions.extra_ngrams``, a second hashed part such as word 1-2-grams).
3. A logistic regression per regularisation strength ``C``; the dev split picks ``C`` (average precision) and,
   across tasks, whether the character n-grams earn their CPU time (mean dev AP must rise by ``CHARS_MIN_GAIN``).
4. Platt calibration on out-of-fold decision values of the training data, folded into the head's weights, so the
   gateway computes ``sigmoid(x @ W + b)`` and nothing else.
5. A threshold per task on the dev split, as the task's rule says (:data:`RULES`): the lowest threshold (most recall)
   that keeps the rule's error measure within its limit.

Only ``{task}.dev.jsonl`` files are read from ``--dev``; a task without one falls back to a stratified 20% of its
training data (the manifest and the card say so, loudly: such thresholds are not evidence of anything).

The artifact: ``heads.safetensors``, ``manifest.json`` (sources, counts, seeds, encoder name/path/sha256, features,
thresholds, dev metrics, sha256 of every file) and ``card.md``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardserve.guardrails.encoder import SentenceEncoder, load_encoder, read_encoder_manifest
from guardserve.guardrails.semantic import HEADS, MANIFEST, WINDOW_CHARS, WINDOW_OVERLAP, CharNgramHasher
from guardserve.models.checkpoint import sha256_file

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATIC = ROOT / "models" / "guards" / "minilm-l6-static-256"
DEFAULT_ONNX = ROOT / "runs" / "encoders" / "minilm-l6-onnx-int8"
DEFAULT_DEV = Path("evaluation/guards")
C_GRID = (0.5, 2.0, 8.0, 32.0, 128.0)
CHARS = {"analyzer": "char_wb", "ngram_range": [2, 4], "n_features": 1 << 18}
CHARS_MIN_GAIN = 0.005  # mean dev average precision the char n-grams must add to be kept
DEV_FALLBACK_SHARE = 0.2


@dataclass(frozen=True)
class Rule:
    """How a task's threshold is chosen: the most recall with ``measure`` <= ``limit`` (for ``precision``: >=)."""

    measure: str  # "fpr" (all negatives), "lookalike_fpr" (kind == benign_lookalike), "precision"
    limit: float
    recall_target: float | None = None  # reported, not enforced: the dev split says whether it is met

    def describe(self) -> str:
        op = ">=" if self.measure == "precision" else "<="
        target = f", recall target {self.recall_target}" if self.recall_target is not None else ""
        return f"max recall with {self.measure} {op} {self.limit}{target}"


RULES = {
    "prompt_injection": Rule("fpr", 0.05, recall_target=0.90),
    "toxicity": Rule("precision", 0.90),
    "harmful_request": Rule("lookalike_fpr", 0.05),
}


@dataclass(frozen=True)
class Labeled:
    text: str
    label: int
    kind: str
    lang: str


def _data_module() -> tuple[Any, str]:
    """The training-data generator (a module with ``TASKS`` and ``build(task, seed, identity_balance=...)``)."""
    return importlib.import_module("guardserve.training.guards.data"), "guardserve.training.guards.data"


def source_digest(module: Any) -> str | None:
    """sha256 over the data generator's source files (its identity: the data it builds follows from code + seed)."""
    from guardserve.guardrails.encoder import directory_digest

    if getattr(module, "__file__", None) is None:
        return None
    file = Path(module.__file__)
    root = file.parent if file.name == "__init__.py" else None
    files = sorted(root.rglob("*.py")) if root else [file]
    return directory_digest({str(f.relative_to(file.parent)): sha256_file(f) for f in files})


def training_examples(task: str, seed: int, module: Any, identity_balance: bool = True) -> list[Labeled]:
    built = module.build(task, seed=seed, identity_balance=identity_balance)
    return [Labeled(e.text, int(e.label), e.kind, e.lang) for e in built]


def read_dev(dev_dir: Path, task: str) -> list[Labeled] | None:
    """The task's dev split, or None. Only ``*.dev.jsonl``: test splits are never opened here."""
    file = dev_dir / f"{task}.dev.jsonl"
    if not file.name.endswith(".dev.jsonl") or not file.is_file():
        return None
    rows = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
    return [Labeled(r["text"], int(r["label"]), r.get("kind", ""), r.get("lang", "en")) for r in rows]


def split_fallback(examples: list[Labeled], seed: int) -> tuple[list[Labeled], list[Labeled]]:
    """A stratified (label) share of the training data as a stand-in dev split."""
    rng = random.Random(seed)
    train: list[Labeled] = []
    dev: list[Labeled] = []
    for label in (0, 1):
        group = [e for e in examples if e.label == label]
        rng.shuffle(group)
        n_dev = round(len(group) * DEV_FALLBACK_SHARE)
        dev += group[:n_dev]
        train += group[n_dev:]
    return train, dev


def counts(examples: Sequence[Labeled]) -> dict[str, Any]:
    return {
        "n": len(examples),
        "positive": sum(e.label for e in examples),
        "kinds": dict(sorted(Counter(e.kind for e in examples).items())),
        "langs": dict(sorted(Counter(e.lang for e in examples).items())),
    }


# --- thresholds and metrics -------------------------------------------------------------------------------------


def _measure(rule: Rule, tp: Any, fp: Any, lookalike_fp: Any, n_neg: int, n_lookalike: int) -> Any:
    import numpy as np

    if rule.measure == "fpr":
        return fp / max(n_neg, 1)
    if rule.measure == "lookalike_fpr":
        return lookalike_fp / max(n_lookalike, 1) if n_lookalike else fp / max(n_neg, 1)
    if rule.measure == "precision":
        return np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
    raise ValueError(f"unknown threshold measure {rule.measure!r}")


def choose_threshold(scores: Sequence[float], labels: Sequence[int], kinds: Sequence[str], rule: Rule) -> float:
    """The lowest threshold (``score >= t`` flags) whose flags keep ``rule``'s measure within its limit; when no
    threshold does, the one with the best measure (the strictest among equals)."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    lookalike = np.asarray([k == "benign_lookalike" for k in kinds]) & (y == 0)
    order = np.argsort(-s, kind="stable")
    s, y, lookalike = s[order], y[order], lookalike[order]
    last = np.r_[s[1:] != s[:-1], True]  # the last position of each run of equal scores: the possible cuts
    tp, fp, lk = np.cumsum(y)[last], np.cumsum(1 - y)[last], np.cumsum(lookalike)[last]
    cuts = s[last]
    value = _measure(rule, tp, fp, lk, int((y == 0).sum()), int(lookalike.sum()))
    ok = value >= rule.limit if rule.measure == "precision" else value <= rule.limit
    if ok.any():
        return float(cuts[np.nonzero(ok)[0].max()])  # cuts descend: the last one that is ok flags the most
    best = value.max() if rule.measure == "precision" else value.min()
    return float(cuts[np.nonzero(value == best)[0].min()])


def metrics(scores: Sequence[float], labels: Sequence[int], kinds: Sequence[str], threshold: float) -> dict[str, Any]:
    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    flagged = s >= threshold
    tp = int((flagged & (y == 1)).sum())
    fp = int((flagged & (y == 0)).sum())
    n_pos, n_neg = int(y.sum()), int((y == 0).sum())
    both = 0 < n_pos < len(y)
    out: dict[str, Any] = {
        "n": len(y),
        "positive": n_pos,
        "roc_auc": round(float(roc_auc_score(y, s)), 4) if both else None,
        "average_precision": round(float(average_precision_score(y, s)), 4) if both else None,
        "threshold": round(threshold, 6),
        "precision": round(tp / max(tp + fp, 1), 4),
        "recall": round(tp / max(n_pos, 1), 4),
        "fpr": round(fp / max(n_neg, 1), 4),
    }
    by_kind: dict[str, dict[str, float]] = {}
    for kind in sorted(set(kinds)):
        mask = np.asarray([k == kind for k in kinds])
        rate = float(flagged[mask].mean())
        by_kind[kind] = {"n": int(mask.sum()), "flagged": round(rate, 4)}
    out["flagged_by_kind"] = by_kind
    lookalike = np.asarray([k == "benign_lookalike" for k in kinds]) & (y == 0)
    out["lookalike_fpr"] = round(float(flagged[lookalike].mean()), 4) if lookalike.any() else None
    return out


def targets_met(rule: Rule, m: dict[str, Any]) -> bool:
    """Whether dev met the rule: its limit (a threshold within it exists) and its recall target, if any."""
    value = {"fpr": m["fpr"], "precision": m["precision"]}.get(rule.measure, m["lookalike_fpr"])
    if value is None:
        value = m["fpr"]
    within = value >= rule.limit if rule.measure == "precision" else value <= rule.limit
    return bool(within and (rule.recall_target is None or m["recall"] >= rule.recall_target))


# --- features and heads -----------------------------------------------------------------------------------------


class Features:
    """Encoder vectors, plus hashed character n-grams when ``chars`` is set; cached per text list."""

    def __init__(self, encoder: SentenceEncoder, chars: dict[str, Any] | None = None) -> None:
        self.encoder = encoder
        self.hasher = CharNgramHasher(chars or CHARS)
        self._dense: dict[int, Any] = {}
        self.encode_seconds = 0.0

    def build(self, texts: Sequence[str], chars: bool) -> Any:
        import numpy as np
        import scipy.sparse as sp

        key = hash(tuple(texts))
        if key not in self._dense:
            start = time.perf_counter()
            self._dense[key] = np.vstack([self.encoder.encode(texts[i : i + 256]) for i in range(0, len(texts), 256)])
            self.encode_seconds += time.perf_counter() - start
        dense = self._dense[key]
        if not chars:
            return dense
        return sp.hstack([sp.csr_matrix(dense), self.hasher.transform(texts)], format="csr")


@dataclass(frozen=True)
class HeadOptions:
    """How the heads are fit: the regularisation grid dev chooses from, and class weights."""

    c_grid: tuple[float, ...] = C_GRID
    class_weight: str | None = None  # None or "balanced"
    ngrams: tuple[str, int, int] = ("char_wb", 2, 4)  # the hashed n-grams: analyzer, shortest, longest
    extra_ngrams: tuple[str, int, int] | None = None  # a second hashed part (e.g. word 1-2), concatenated

    def chars(self) -> dict[str, Any]:
        analyzer, low, high = self.ngrams
        first = {**CHARS, "analyzer": analyzer, "ngram_range": [low, high]}
        if self.extra_ngrams is None:
            return first
        analyzer, low, high = self.extra_ngrams
        second = {**CHARS, "analyzer": analyzer, "ngram_range": [low, high]}
        return {"parts": [first, second], "n_features": 2 * int(CHARS["n_features"])}  # type: ignore[call-overload]


def fit_head(x: Any, y: Any, c: float, seed: int, class_weight: str | None = None) -> Any:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=3000, random_state=seed, class_weight=class_weight)
    model.fit(x, y)
    return model


def platt(x: Any, y: Any, c: float, seed: int, class_weight: str | None = None) -> tuple[float, float]:
    """Sigmoid calibration ``p = sigmoid(a * z + b)`` fit on 5-fold out-of-fold decision values ``z``."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    z = np.zeros(len(y))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    for train_index, test_index in folds.split(np.zeros(len(y)), y):
        fold = fit_head(x[train_index], y[train_index], c, seed, class_weight)
        z[test_index] = fold.decision_function(x[test_index])
    calibrator = LogisticRegression(C=1e6, max_iter=1000).fit(z[:, None], y)
    return float(calibrator.coef_[0, 0]), float(calibrator.intercept_[0])


@dataclass
class TaskFit:
    task: str
    weight: Any  # (features,) calibrated
    bias: float
    c: float
    dev_ap: float


def fit_task(
    task: str,
    features: Features,
    train: list[Labeled],
    dev: list[Labeled],
    chars: bool,
    seed: int,
    options: HeadOptions = HeadOptions(),
) -> TaskFit:
    import numpy as np
    from sklearn.metrics import average_precision_score

    x = features.build([e.text for e in train], chars)
    y = np.asarray([e.label for e in train])
    x_dev = features.build([e.text for e in dev], chars)
    y_dev = np.asarray([e.label for e in dev])
    best: tuple[float, float, Any] | None = None
    for c in options.c_grid:
        model = fit_head(x, y, c, seed, options.class_weight)
        ap = float(average_precision_score(y_dev, model.decision_function(x_dev)))
        log.info("%s chars=%s C=%s dev AP %.4f", task, chars, c, ap)
        if best is None or ap > best[0] + 1e-9:
            best = (ap, c, model)
    assert best is not None
    ap, c, model = best
    a, b = platt(x, y, c, seed, options.class_weight)
    weight = model.coef_[0] * a
    bias = float(model.intercept_[0] * a + b)
    return TaskFit(task, weight, bias, c, ap)


def probe(classifier: Any, thresholds: dict[str, float], texts: Sequence[str]) -> dict[str, Any]:
    """The overconfidence check: held-out everyday harmless texts (the generator's ``PROBE``, never trained on)
    that a head flags at its threshold. A head that fires on "three four" or "good day!" extrapolates on text unlike
    its training data; the manifest and the card record it and the log warns."""
    if not texts:
        return {"n": 0, "flagged": {}, "overconfident": []}
    scores = classifier.scores(list(texts))
    flagged = {t: [x for x, s in zip(texts, scores[t], strict=True) if s >= thresholds[t]] for t in thresholds}
    for task, hits in flagged.items():
        if hits:
            log.warning("%s head flags %d of %d harmless probe texts, e.g. %r: overconfident", task, len(hits),
                        len(texts), hits[0])  # fmt: skip
    return {
        "n": len(texts),
        "flagged": flagged,
        "max_score": {t: round(max(scores[t]), 4) for t in thresholds},
        "overconfident": [t for t, hits in flagged.items() if hits],
    }


# --- the command ------------------------------------------------------------------------------------------------


def resolve_encoder(kind: str, encoder_dir: Path | None) -> Path:
    """The encoder directory to train on: given, or the default one of ``kind``, exported first if absent."""
    from guardserve.training.guards.encoder_export import export_onnx, export_static

    directory = encoder_dir or (DEFAULT_STATIC if kind == "static" else DEFAULT_ONNX)
    if not (directory / "encoder.json").is_file():
        log.info("exporting the %s encoder to %s", kind, directory)
        if kind == "static":
            export_static(directory, pca_dims=256)
        else:
            export_onnx(directory, quantize=True)
    return directory


def train(
    out: Path,
    *,
    encoder_kind: str = "static",
    encoder_dir: Path | None = None,
    dev_dir: Path = DEFAULT_DEV,
    seed: int = 0,
    features: str = "auto",
    tasks: Sequence[str] | None = None,
    identity_balance: bool = True,
    options: HeadOptions = HeadOptions(),
) -> dict[str, Any]:
    """Train the heads, choose on dev, write the artifact to ``out``; returns its manifest."""
    import numpy as np
    from safetensors.numpy import save_file

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = time.perf_counter()
    module, data_source = _data_module()
    task_list = tuple(tasks or module.TASKS)
    directory = resolve_encoder(encoder_kind, encoder_dir)
    encoder_manifest = read_encoder_manifest(directory)
    encoder = load_encoder(directory)
    feats = Features(encoder, options.chars())

    splits: dict[str, tuple[list[Labeled], list[Labeled], str]] = {}
    for task in task_list:
        examples = training_examples(task, seed, module, identity_balance)
        dev = read_dev(dev_dir, task)
        if dev is None:
            log.warning("%s: no %s/%s.dev.jsonl, using %d%% of the training data as dev", task, dev_dir, task,
                        round(DEV_FALLBACK_SHARE * 100))  # fmt: skip
            train_part, dev = split_fallback(examples, seed)
            splits[task] = (train_part, dev, f"fallback: {DEV_FALLBACK_SHARE:.0%} of the training data")
        else:
            file = dev_dir / f"{task}.dev.jsonl"
            splits[task] = (examples, dev, f"{file.name} (sha256 {sha256_file(file)})")

    variants = [False, True] if features == "auto" else [features == "encoder+chars"]
    fits: dict[bool, dict[str, TaskFit]] = {}
    for chars in variants:
        fits[chars] = {t: fit_task(t, feats, tr, dv, chars, seed, options) for t, (tr, dv, _) in splits.items()}
    mean_ap = {chars: float(np.mean([f.dev_ap for f in fits[chars].values()])) for chars in fits}
    use_chars = variants == [True] or (len(variants) == 2 and mean_ap[True] >= mean_ap[False] + CHARS_MIN_GAIN)
    chosen = fits[use_chars]

    dim = encoder.dim
    w = np.stack([chosen[t].weight[:dim] for t in task_list], axis=1).astype(np.float32)
    tensors = {"encoder.weight": w, "bias": np.asarray([chosen[t].bias for t in task_list], dtype=np.float32)}
    if use_chars:
        tensors["chars.weight"] = np.stack([chosen[t].weight[dim:] for t in task_list], axis=1).astype(np.float16)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / HEADS))
    (out / HEADS).chmod(0o644)

    # thresholds and dev metrics through the gateway's own scoring path (windows, float32 heads, folded calibration)
    from guardserve.guardrails.semantic import SemanticClassifier

    manifest: dict[str, Any] = {
        "format": 1,
        "name": out.name,
        "tasks": list(task_list),
        "encoder": {
            "name": encoder_manifest["name"],
            "kind": encoder_manifest["kind"],
            "dim": dim,
            "sha256": encoder_manifest["sha256"],
            "path": os.path.relpath(directory.resolve(), out.resolve()),
            "source": encoder_manifest["source"],
        },
        "features": {"encoder": True, "chars": options.chars() if use_chars else None},
        "windows": {"chars": WINDOW_CHARS, "overlap": WINDOW_OVERLAP},
        "thresholds": {t: 0.5 for t in task_list},
        "files": {HEADS: sha256_file(out / HEADS)},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    classifier = SemanticClassifier(out, encoder=encoder, verify=False)
    dev_metrics: dict[str, Any] = {}
    for task, (_, dev, _) in splits.items():
        scores = classifier.scores([e.text for e in dev])[task]
        labels, kinds = [e.label for e in dev], [e.kind for e in dev]
        threshold = choose_threshold(scores, labels, kinds, RULES[task])
        manifest["thresholds"][task] = round(threshold, 6)
        dev_metrics[task] = metrics(scores, labels, kinds, threshold)
        dev_metrics[task]["rule"] = RULES[task].describe()
        dev_metrics[task]["targets_met"] = targets_met(RULES[task], dev_metrics[task])
    manifest["thresholds"] = {t: float(v) for t, v in manifest["thresholds"].items()}
    manifest.update(
        {
            "data": {
                "source": data_source,
                "source_sha256": source_digest(module),
                "seed": seed,
                "identity_balance": identity_balance,
                "train": {t: counts(tr) for t, (tr, _, _) in splits.items()},
                "dev": {t: {"source": src, **counts(dv)} for t, (_, dv, src) in splits.items()},
            },
            "training": {
                "seed": seed,
                "head": "sklearn LogisticRegression (lbfgs, L2) + Platt calibration on 5-fold out-of-fold decisions",
                "c_grid": list(options.c_grid),
                "class_weight": options.class_weight,
                "c_chosen": {t: chosen[t].c for t in task_list},
                "features_compared": {"encoder" if not k else "encoder+chars": round(v, 4) for k, v in mean_ap.items()},
                "features_chosen": "encoder+chars" if use_chars else "encoder",
                "seconds": round(time.perf_counter() - started, 1),
            },
            "rules": {t: RULES[t].describe() for t in task_list},
            "dev_metrics": dev_metrics,
            "probe": probe(classifier, manifest["thresholds"], getattr(module, "PROBE", ())),
        }
    )
    from guardserve.training.guards.card import write_card

    write_card(out, manifest)
    manifest["files"] = {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file() and p.name != MANIFEST}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
