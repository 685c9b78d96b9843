"""Sentence encoders for the semantic guard classifiers: texts in, one float32 vector per text out.

* :class:`StaticEncoder` (default): a model2vec static model distilled from all-MiniLM-L6-v2. A text is the mean of
  its tokens' stored vectors, a table lookup: ~0.05 ms per 200-character text on one core, no torch, no onnxruntime.
* :class:`OnnxEncoder` (opt-in, the ``onnx`` extra): MiniLM's transformer itself in onnxruntime, with mean pooling and
  L2 normalisation as sentence-transformers does them. More accurate, ~40-100x the CPU time.

Why :class:`StaticEncoder` reads the model2vec directory itself (``safetensors.numpy`` + ``tokenizers``, ~40 lines)
instead of using ``model2vec.StaticModel`` (whose import is torch-free and light, ~0.2 s): ``StaticModel.encode``
reconfigures the shared tokenizer's truncation on every call and puts it back afterwards (shared mutable state
under the guard threads; a 400-call, 8-thread trial did not fail, but nothing promises it), tokenizes with
``encode_batch_fast`` (tokenizers' own thread pool: CPU outside the calling thread, which the guard budget counts
per thread), averages float16 rows in float16, and would add joblib and tqdm to the gateway's dependencies. The
format is model2vec's, written by model2vec itself in the trainer (:mod:`training.guards.encoder_export`); a test
checks that both compute the same vectors.

Thread safety: after construction nothing is mutated. The tokenizers are configured once (no padding, no
truncation) and only read; onnxruntime sessions may be run from several threads at once.

Nothing heavy at import time: numpy, tokenizers, safetensors and onnxruntime are imported when an encoder is built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

ENCODER_MANIFEST = "encoder.json"  # kind, name, dim, source model and licence, sha256 of every file


class SentenceEncoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape ``(len(texts), dim)``; rows are L2-normalised (an empty text: zeros)."""
        ...


class IntegrityError(ValueError):
    """A file of an artifact does not have the sha256 its manifest records."""


def directory_digest(files: Mapping[str, str]) -> str:
    """One sha256 for a set of files: the sha256 of their ``name  sha256`` lines, sorted by name."""
    lines = "".join(f"{name}  {files[name]}\n" for name in sorted(files))
    return hashlib.sha256(lines.encode()).hexdigest()


def verify_files(directory: Path, files: Mapping[str, str]) -> None:
    """Raise :class:`IntegrityError` unless every listed file exists with its recorded sha256."""
    from guardserve.models.checkpoint import sha256_file

    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise IntegrityError(f"{directory}: {name} is missing")
        if sha256_file(path) != expected:
            raise IntegrityError(f"{directory}: {name} does not match the sha256 in its manifest")


def read_encoder_manifest(directory: Path) -> dict[str, Any]:
    file = directory / ENCODER_MANIFEST
    if not file.is_file():
        raise FileNotFoundError(f"{directory} is not an encoder directory (no {ENCODER_MANIFEST})")
    manifest: dict[str, Any] = json.loads(file.read_text())
    return manifest


def _tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()  # ids are cut in numpy: the tokenizer is never reconfigured after this
    return tokenizer


def _normalize(vectors: np.ndarray) -> np.ndarray:
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return out


class StaticEncoder:
    """A model2vec directory (``config.json``, ``model.safetensors`` with ``embeddings`` and optionally ``weights``
    and ``mapping``, ``tokenizer.json``), encoded as model2vec does: tokens without special tokens and without the
    unknown token, the mean of their vectors (times their weights, if any), L2-normalised when the config says so.

    The table stays float16 when stored so (half the memory per worker); only the gathered rows become float32.
    Texts are cut at ``max_chars`` before tokenizing and at ``max_tokens`` after, so one huge text costs bounded time
    (callers that need all of a long text score it in windows, as :mod:`guardserve.guardrails.semantic` does).
    """

    def __init__(self, path: str | Path, *, max_tokens: int = 512, max_chars: int = 4096) -> None:
        import numpy as np
        from safetensors.numpy import load_file

        directory = Path(path)
        config = json.loads((directory / "config.json").read_text())
        tensors = load_file(str(directory / "model.safetensors"))
        self._table: np.ndarray = tensors["embeddings"]
        if self._table.dtype not in (np.float16, np.float32):
            raise ValueError(f"{directory}: unsupported embedding dtype {self._table.dtype} (float16/float32 only)")
        self._weights: np.ndarray | None = tensors.get("weights")
        self._mapping: np.ndarray | None = tensors.get("mapping")
        self._tokenizer = _tokenizer(directory / "tokenizer.json")
        unk = getattr(self._tokenizer.model, "unk_token", None)
        self._unk: int | None = self._tokenizer.token_to_id(unk) if unk else None
        self._normalize = bool(config.get("normalize", True))
        self._max_tokens = max_tokens
        self._max_chars = max_chars
        self.dim = int(self._table.shape[1])
        manifest = directory / ENCODER_MANIFEST
        self.name = json.loads(manifest.read_text())["name"] if manifest.is_file() else f"static:{directory.name}"

    def token_ids(self, text: str) -> list[int]:
        ids: list[int] = self._tokenizer.encode(text[: self._max_chars], add_special_tokens=False).ids
        if self._unk is not None:
            ids = [i for i in ids if i != self._unk]
        return ids[: self._max_tokens]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = self.token_ids(text)
            if not ids:
                continue
            index = np.asarray(ids, dtype=np.int64)
            rows = self._table[index if self._mapping is None else self._mapping[index]].astype(np.float32)
            if self._weights is not None:
                rows *= self._weights[index].astype(np.float32)[:, None]
            out[row] = rows.mean(axis=0)
        return _normalize(out) if self._normalize else out


class OnnxEncoder:
    """A sentence-transformers model exported to ONNX (``model.onnx`` with inputs ``input_ids``, ``attention_mask``,
    ``token_type_ids`` and the last hidden state as output; ``tokenizer.json``). Mean pooling over the attention mask,
    then L2 normalisation, as all-MiniLM-L6-v2's sentence-transformers modules do. Inputs are cut at ``max_tokens``
    (MiniLM was trained on 256).

    ``threads`` is onnxruntime's intra-op thread count: 1 by default, so a guard call costs one core and concurrent
    requests scale by the guard pool, not by a hidden thread pool per call.
    """

    def __init__(self, path: str | Path, *, threads: int = 1, max_tokens: int = 256) -> None:
        try:
            import onnxruntime
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("the ONNX encoder needs onnxruntime: pip install 'guardserve[onnx]'") from exc

        directory = Path(path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self._session = onnxruntime.InferenceSession(
            str(directory / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = _tokenizer(directory / "tokenizer.json")
        pad = self._tokenizer.token_to_id("[PAD]")
        self._pad = 0 if pad is None else int(pad)
        self._max_tokens = max_tokens
        self.dim = int(self._session.get_outputs()[0].shape[-1])
        manifest = directory / ENCODER_MANIFEST
        self.name = json.loads(manifest.read_text())["name"] if manifest.is_file() else f"onnx:{directory.name}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = [self._tokenizer.encode(text) for text in texts]
        ids = [
            e.ids[: self._max_tokens - 1] + e.ids[-1:] if len(e.ids) > self._max_tokens else e.ids for e in encodings
        ]
        width = max(len(i) for i in ids)
        input_ids = np.full((len(ids), width), self._pad, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        hidden = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return _normalize(pooled)


def load_encoder(path: str | Path, *, verify: bool = True, **options: Any) -> SentenceEncoder:
    """The encoder in ``path``, by the ``kind`` its ``encoder.json`` names; with ``verify``, every file is checked
    against the manifest's sha256 first (an artifact changed by hand is refused, not silently served)."""
    directory = Path(path)
    manifest = read_encoder_manifest(directory)
    if verify:
        verify_files(directory, manifest["files"])
    kind = manifest.get("kind")
    if kind == "static":
        return StaticEncoder(directory, **options)
    if kind == "onnx":
        return OnnxEncoder(directory, **options)
    raise ValueError(f"{directory}: unknown encoder kind {kind!r} (static, onnx)")
