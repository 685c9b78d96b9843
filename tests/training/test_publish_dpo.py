"""The DPO adapter release: what `python -m guardserve.training.publish_dpo` writes, and that it merges back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from guardserve.models.checkpoint import verify_sums  # noqa: E402
from guardserve.models.smollm2 import merge_adapter  # noqa: E402
from guardserve.training.publish_dpo import publish_dpo  # noqa: E402
from tests.training.test_preference import arithmetic_pair  # noqa: E402

pytestmark = pytest.mark.slow


def _eval_json(path: Path, name: str) -> Path:
    w = {"rate": 0.75, "n": 4, "k": 3, "ci95": [0.301, 0.954]}
    run = {"model_only": {"harmful": {"refused": w, "helpful": w}}}
    path.write_text(json.dumps({"set": "x.jsonl", "results": [{"checkpoint": name, "n": 4, "runs": {"greedy": run}}]}))
    return path


def test_the_release_holds_the_adapter_its_records_and_merges_back_to_the_trained_model(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from guardserve.training.cli import main

    run, under = tmp_path / "run", tmp_path / "sft-adapter"
    argv = ["dpo", str(tiny_checkpoint), "--pairs", str(arithmetic_pair(tmp_path)), "--lr", "1e-2"]
    assert main([*argv, "--lora-rank", "4", "--steps", "3", "--out", str(run)]) == 0
    under.mkdir()
    (under / "adapter_model.safetensors").write_bytes(b"the adapter under this one")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("# how it was chosen\nname: smol-dpo-test\n")
    target = tmp_path / "release"
    evaluations = {"dev": _eval_json(tmp_path / "dev.json", "cand"), "test": _eval_json(tmp_path / "t.json", "cand")}
    manifest = publish_dpo(run, target, recipe, [under], evaluations)

    assert verify_sums(target) == []
    assert {f.name for f in target.iterdir()} == {"adapter_config.json", "adapter_model.safetensors", "recipe.yaml",
        "manifest.json", "MODEL_CARD.md", "dev_eval.json", "test_eval.json", "SHA256SUMS"}  # fmt: skip
    assert json.loads((target / "manifest.json").read_text()) == manifest
    assert manifest["recipe"] == "smol-dpo-test" and manifest["dpo"]["lora_rank"] == 4
    assert manifest["trained_on"][0]["adapter"] == "sft-adapter" and manifest["pairs"]["count"] == 1
    card = (target / "MODEL_CARD.md").read_text()
    assert "`sft-adapter`" in card and "| cand | greedy | model_only | harmful refused |" in card
    assert "Independent test set" in card and "Apache-2.0" in card

    start = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, dtype=torch.float32)
    merged = merge_adapter(start, target).state_dict()  # what import-smollm2 does with the chain
    saved = load_file(str(run / "checkpoint" / "model.safetensors"))
    assert all(torch.equal(merged[k], saved[k]) for k in saved)


def test_a_whole_model_run_has_nothing_to_publish(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from guardserve.training.cli import main

    run = tmp_path / "run"
    argv = ["dpo", str(tiny_checkpoint), "--pairs", str(arithmetic_pair(tmp_path)), "--lr", "1e-4", "--steps", "1"]
    assert main([*argv, "--out", str(run)]) == 0
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: x\n")
    with pytest.raises(ValueError, match="no adapter"):
        publish_dpo(run, tmp_path / "release", recipe, [], {})
    assert not (tmp_path / "release").exists()


def test_the_command_publishes_only_into_the_import_chain(tmp_path: Path) -> None:
    from guardserve.training.publish_dpo import main

    with pytest.raises(SystemExit) as refused:  # a folder import-smollm2 would never merge
        main([str(tmp_path / "run"), "--recipe", str(tmp_path / "r.yaml"), "--target", str(tmp_path / "elsewhere")])
    assert refused.value.code == 2
    assert not (tmp_path / "elsewhere").exists()
