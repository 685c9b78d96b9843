"""The semantic guard classifiers: one sentence-encoder pass per text, one linear head per category on its features.

The artifact (written by ``guardserve train guards``, default ``models/guards/guardserve-guards``) is a directory
with ``manifest.json`` (tasks, thresholds chosen on the dev split, the encoder's name, relative path and sha256,
the sha256 of every file) and ``heads.safetensors``: ``encoder.weight`` (dim, tasks), ``bias`` (tasks) and, when the
trainer found on dev that they help, ``chars.weight`` (n_features, tasks) over hashed n-grams (character n-grams,
and in artifacts whose manifest lists several ``parts``, word n-grams beside them). The heads
are logistic regressions with their Platt calibration folded in, so a score is ``sigmoid(features @ W + b)``: a
probability-like number in [0, 1], comparable across texts; the thresholds to act on are in the manifest.

Everything is checked against the manifest's sha256 before use: a changed or swapped file fails loudly.

Long texts are scored in overlapping windows (the manifest's ``windows``, default 256 characters overlapping by 128:
the encoder averages token vectors, so one bad sentence in a long harmless document would fade in one mean); a
text's score is its highest window's. A long text thus costs about twice its length in encoder work.

Thread-safe: nothing is mutated after construction. :class:`TaskScorer` is the one-category view with the
``name`` / ``scores(texts)`` shape of :class:`guardserve.guardrails.toxicity.ToxicityClassifier`, for the micro-batcher.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardserve.guardrails.encoder import (
    IntegrityError,
    SentenceEncoder,
    load_encoder,
    read_encoder_manifest,
    verify_files,
)

if TYPE_CHECKING:
    import numpy as np

DEFAULT_ARTIFACT = Path(__file__).resolve().parents[1] / "models" / "guards" / "guardserve-guards"
MANIFEST = "manifest.json"
HEADS = "heads.safetensors"
WINDOW_CHARS = 256  # about the length of the training texts: a short attack is not averaged away in a long mean
WINDOW_OVERLAP = 128  # any span up to this long lies whole in one window


def windows(text: str, size: int = WINDOW_CHARS, overlap: int = WINDOW_OVERLAP) -> list[str]:
    """``text`` in pieces of ``size`` characters overlapping by ``overlap`` (the text itself when short)."""
    if len(text) <= size:
        return [text]
    step = size - overlap
    starts = list(range(0, len(text) - overlap, step))
    return [text[s : s + size] for s in starts]


class CharNgramHasher:
    """Hashed n-grams (sklearn's ``HashingVectorizer``: stateless, so the trainer and the gateway compute the same
    features from the same options without a fitted vocabulary). ``options`` is one vectorizer's (``analyzer``,
    ``ngram_range``, ``n_features``) or ``{"parts": [...]}`` of several, whose columns are concatenated in order
    (e.g. character 2-4-grams and word 1-2-grams, each L2-normalised on its own). sklearn is already a gateway
    dependency (alt-profanity-check); it is imported here, when an artifact that uses these features is loaded."""

    def __init__(self, options: dict[str, Any]) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self.options = dict(options)
        parts = options.get("parts") or [options]
        self._vectorizers = [
            HashingVectorizer(
                analyzer=part["analyzer"],
                ngram_range=tuple(part["ngram_range"]),
                n_features=int(part["n_features"]),
                alternate_sign=False,
                norm="l2",
                lowercase=True,
            )
            for part in parts
        ]
        self._sizes = [int(part["n_features"]) for part in parts]
        self.n_features = sum(self._sizes)

    def transform(self, texts: Sequence[str]) -> Any:
        if len(self._vectorizers) == 1:
            return self._vectorizers[0].transform(list(texts))
        import scipy.sparse as sp

        return sp.hstack([v.transform(list(texts)) for v in self._vectorizers], format="csr")

    def dot(self, texts: Sequence[str], weight: np.ndarray) -> np.ndarray:
        """``transform(texts) @ weight`` (weight: (n_features, k)) by gathering the rows of ``weight`` each text's
        n-grams hit: a text has a few hundred non-zeros among 2^18+ columns, and scipy's sparse-times-dense costs
        ~0.1 ms of overhead per call and part, more than the arithmetic."""
        import numpy as np

        out = np.zeros((len(texts), weight.shape[1]), dtype=np.float64)
        offset = 0
        for vectorizer, size in zip(self._vectorizers, self._sizes, strict=True):
            x = vectorizer.transform(list(texts))
            contributions = weight[x.indices + offset] * x.data[:, None]
            if len(texts) == 1:
                out[0] += contributions.sum(axis=0)
            else:
                rows = np.repeat(np.arange(len(texts)), np.diff(x.indptr))
                for column in range(weight.shape[1]):
                    out[:, column] += np.bincount(rows, weights=contributions[:, column], minlength=len(texts))
            offset += size
        return out


class SemanticClassifier:
    """All categories of one artifact; :meth:`scores` runs the encoder once over the texts for all of them."""

    def __init__(
        self,
        path: str | Path = DEFAULT_ARTIFACT,
        *,
        encoder: SentenceEncoder | None = None,
        encoder_dir: str | Path | None = None,
        verify: bool = True,
    ) -> None:
        import numpy as np
        from safetensors.numpy import load_file

        directory = Path(path)
        manifest_file = directory / MANIFEST
        if not manifest_file.is_file():
            raise FileNotFoundError(f"{directory} is not a semantic guard artifact (no {MANIFEST})")
        self.manifest: dict[str, Any] = json.loads(manifest_file.read_text())
        if verify:
            verify_files(directory, self.manifest["files"])
        self.tasks: tuple[str, ...] = tuple(self.manifest["tasks"])
        self.thresholds: dict[str, float] = {t: float(v) for t, v in self.manifest["thresholds"].items()}
        spec = self.manifest["encoder"]
        if encoder is None:
            where = Path(encoder_dir) if encoder_dir is not None else (directory / spec["path"]).resolve()
            if verify:
                found = read_encoder_manifest(where).get("sha256")
                if found != spec["sha256"]:
                    raise IntegrityError(
                        f"{where}: encoder sha256 {found} is not the {spec['sha256']} {directory} needs"
                    )
            encoder = load_encoder(where, verify=verify)
        if encoder.name != spec["name"] or encoder.dim != int(spec["dim"]):
            raise ValueError(f"{directory} was trained on {spec['name']} (dim {spec['dim']}), not {encoder.name}")
        self.encoder = encoder
        heads = load_file(str(directory / HEADS))
        self._w = heads["encoder.weight"].astype(np.float32)
        self._b = heads["bias"].astype(np.float32)
        self._w_chars: np.ndarray | None = None
        self._chars: CharNgramHasher | None = None
        chars = self.manifest.get("features", {}).get("chars")
        if chars:
            self._w_chars = heads["chars.weight"].astype(np.float32)
            self._chars = CharNgramHasher(chars)
        if self._w.shape != (encoder.dim, len(self.tasks)) or self._b.shape != (len(self.tasks),):
            raise ValueError(f"{directory}: head shapes {self._w.shape}, {self._b.shape} do not fit the manifest")
        spec_windows = self.manifest.get("windows", {})
        self._window = (int(spec_windows.get("chars", WINDOW_CHARS)), int(spec_windows.get("overlap", WINDOW_OVERLAP)))
        self.name = f"semantic:{self.manifest.get('name', directory.name)}"

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), tasks) logits of whole texts (no windowing); the trainer's evaluation uses the same path."""
        import numpy as np

        if not texts:
            return np.zeros((0, len(self.tasks)), dtype=np.float32)
        out = self.encoder.encode(texts) @ self._w + self._b
        if self._chars is not None and self._w_chars is not None:
            out = out + self._chars.dot(texts, self._w_chars).astype(np.float32)
        return np.asarray(out, dtype=np.float32)

    def scores(self, texts: Sequence[str]) -> dict[str, list[float]]:
        """Per task, one probability-like score in [0, 1] per text (a long text: its highest window's)."""
        import numpy as np

        if not texts:
            return {task: [] for task in self.tasks}
        pieces: list[str] = []
        owner: list[int] = []
        for index, text in enumerate(texts):
            parts = windows(text, *self._window)
            pieces.extend(parts)
            owner.extend([index] * len(parts))
        probabilities = 1.0 / (1.0 + np.exp(-self.logits(pieces).astype(np.float64)))
        if len(pieces) == len(texts):
            best = probabilities
        else:
            best = np.zeros((len(texts), len(self.tasks)))
            np.maximum.at(best, np.asarray(owner), probabilities)
        return {task: [float(p) for p in best[:, column]] for column, task in enumerate(self.tasks)}

    def rows(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """:meth:`scores` per text: ``{task: score}`` for each text (the micro-batcher's shape)."""
        by_task = self.scores(texts)
        return [{task: by_task[task][i] for task in self.tasks} for i in range(len(texts))]


class RecentRows:
    """:meth:`SemanticClassifier.rows` remembering its last ``size`` single-text answers: a stream window is judged
    by every semantic guard in turn, in one worker call (:meth:`guardrails.guards.Guard.inspect_now`), and one
    encoder pass answers them all. Thread-safe; texts over ``max_chars`` are not remembered."""

    def __init__(self, fn: Callable[[Sequence[str]], list[dict[str, float]]], size: int = 256, max_chars: int = 4096):
        self._fn = fn
        self._size = size
        self._max_chars = max_chars
        self._recent: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> list[dict[str, float]]:
        if len(texts) != 1 or len(texts[0]) > self._max_chars:
            return self._fn(texts)
        text = texts[0]
        with self._lock:
            found = self._recent.get(text)
            if found is not None:
                self._recent.move_to_end(text)
                return [found]
        row = self._fn(texts)[0]
        with self._lock:
            self._recent[text] = row
            while len(self._recent) > self._size:
                self._recent.popitem(last=False)
        return [row]


class TaskScorer:
    """One category of a :class:`SemanticClassifier`, shaped like :class:`guardrails.toxicity.ToxicityClassifier`.
    Each call runs the encoder; to score several categories of the same texts, call the classifier once instead."""

    def __init__(self, classifier: SemanticClassifier, task: str) -> None:
        if task not in classifier.tasks:
            raise ValueError(f"{task!r} is not one of the artifact's tasks {classifier.tasks}")
        self.classifier = classifier
        self.task = task
        self.name = f"{classifier.name}:{task}"
        self.threshold = classifier.thresholds[task]

    def scores(self, texts: Sequence[str]) -> list[float]:
        return self.classifier.scores(texts)[self.task]
