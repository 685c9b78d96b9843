"""The micro run end to end: trained, evaluated, exported (gated), loaded by transformers, served by the gateway."""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import openai
import pytest

from guardserve.app.main import create_app
from guardserve.app.settings import Settings
from guardserve.models.checkpoint import verify_sums
from guardserve.models.registry import ModelEntry
from guardserve.training.export import ExportRefused, export
from guardserve.training.recipe import Recipe
from tests.support.servers import serve_in_thread

pytestmark = pytest.mark.slow

EXPORT_FILES = {
    "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json",
    "guardserve.json", "MODEL_CARD.md", "eval.json", "data_manifest.json", "preprocess_report.json", "recipe.yaml",
    "loss_curve.png", "SHA256SUMS",
}  # fmt: skip


def test_run_writes_metrics_training_summary_and_eval(micro_run: Path, micro_recipe: Recipe) -> None:
    training = json.loads((micro_run / "training.json").read_text())
    assert training["steps"] == micro_recipe.train.max_steps and training["tokens_per_second"] > 0
    metrics = [json.loads(line) for line in (micro_run / "metrics.jsonl").read_text().splitlines()]
    assert any("val_loss" in m for m in metrics) and any("tokens_per_s" in m for m in metrics)
    evaluation = json.loads((micro_run / "eval.json").read_text())
    assert set(evaluation["quality"]["exact_match"]) == {"arithmetic", "units", "facts"}
    assert math.isfinite(evaluation["quality"]["val_perplexity"])
    assert {"refusal_rate", "over_refusal_rate", "toxicity_rate"} <= set(evaluation["safety"])
    privacy = evaluation["privacy"]
    assert len(privacy["canaries"]) == 4
    assert all(0 <= c["exposure_bits"] <= privacy["max_exposure_bits"] for c in privacy["canaries"])


def test_export_refuses_below_thresholds_and_force_says_so(
    micro_run: Path, micro_recipe: Recipe, tmp_path: Path
) -> None:
    evaluation = json.loads((micro_run / "eval.json").read_text())
    with pytest.raises(ExportRefused) as refused:
        export(micro_run, tmp_path / "refused", micro_recipe, evaluation=evaluation)
    assert any("arithmetic_exact_match" in r for r in refused.value.reasons)
    assert not (tmp_path / "refused").exists() and not (tmp_path / "refused.exporting").exists()

    from guardserve.app.cli import main

    assert main(["train", "export", str(micro_run), "--out", str(tmp_path / "cli")]) == 3

    out = tmp_path / "forced"
    export(micro_run, out, micro_recipe, force=True, evaluation=evaluation)
    assert {f.name for f in out.iterdir()} == EXPORT_FILES
    assert verify_sums(out) == []
    card = (out / "MODEL_CARD.md").read_text()
    assert "--force" in card and "## Intended use" in card and "## Ethical considerations" in card
    assert json.loads((out / "guardserve.json").read_text())["trained"] is True
    from guardserve.training.recipe import load_recipe

    assert load_recipe(out / "recipe.yaml") == micro_recipe  # `guardserve train eval DIR` finds it there
    (out / "recipe.yaml").write_text("tampered\n")
    assert verify_sums(out) == ["recipe.yaml: sha256 mismatch"]


def test_exported_checkpoint_loads_and_is_served_by_the_gateway(
    micro_run: Path, micro_recipe: Recipe, tmp_path: Path
) -> None:
    from guardserve.models.hf import transformers_offline
    from guardserve.training.evaluate.generate import generate

    out = tmp_path / "export"
    export(micro_run, out, micro_recipe, force=True, dtype="bfloat16")
    transformers = transformers_offline()
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    assert tokenizer.eos_token == "<|end|>" and tokenizer.chat_template
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"  # older readers (vLLM) need this
    assert json.loads((out / "config.json").read_text())["rope_theta"]
    assert model.config.vocab_size % 64 == 0

    prompt = "What is 12 + 34?"
    expected = generate(out, [prompt], max_new_tokens=12)[0]
    server = serve_in_thread(create_app(Settings(models=[ModelEntry(name="micro", engine="cpu", checkpoint=out)])))
    try:
        models = httpx.get(f"{server.v1}/models").json()["data"]
        assert models[0]["id"] == "micro" and models[0]["trained"] is True
        client = openai.OpenAI(base_url=server.v1, api_key="unused")
        reply = client.chat.completions.create(
            model="micro", messages=[{"role": "user", "content": prompt}], max_tokens=12, temperature=0
        )
        assert reply.choices[0].message.content == expected
    finally:
        server.stop()


def test_resume_continues_exactly_where_the_run_stopped(micro_recipe: Recipe, micro_run: Path, tmp_path: Path) -> None:
    from guardserve.training.loop import train
    from guardserve.training.prepare import load_prepared

    recipe = micro_recipe.with_updates({"train.max_steps": 10, "train.eval_every": 5, "train.checkpoint_every": 5})
    prepared = load_prepared(micro_run / "data")
    whole = train(recipe, prepared, tmp_path / "whole", progress=False)

    def crash(step: int, loss: float) -> None:
        if step == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(recipe, prepared, tmp_path / "resumed", progress=False, on_eval=crash)
    resumed = train(recipe, prepared, tmp_path / "resumed", resume=True, progress=False)
    assert resumed.steps == whole.steps == 10
    assert resumed.best_val_loss == pytest.approx(whole.best_val_loss, abs=1e-5)


def test_same_seed_same_loss_curve(micro_recipe: Recipe, micro_run: Path, tmp_path: Path) -> None:
    from guardserve.training.loop import train
    from guardserve.training.prepare import load_prepared

    recipe = micro_recipe.with_updates({"train.max_steps": 6, "train.eval_every": 3, "train.log_every": 1})
    prepared = load_prepared(micro_run / "data")
    curves = []
    for name in ("a", "b"):
        train(recipe, prepared, tmp_path / name, progress=False)
        lines = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        curves.append([m.get("loss", m.get("val_loss")) for m in lines])
    assert curves[0] == curves[1]


def test_fine_tuning_starts_from_the_exported_weights_and_keeps_its_tokenizer(
    micro_recipe: Recipe, micro_run: Path, tmp_path: Path
) -> None:
    from guardserve.models.checkpoint import sha256_file
    from guardserve.training.pipeline import run

    base = tmp_path / "base"
    export(micro_run, base, micro_recipe, force=True)
    recipe = micro_recipe.with_updates(
        {"model.init_from": str(base), "train.max_steps": 2, "train.log_every": 1, "train.warmup_steps": 1}
    )
    run(recipe, tmp_path / "tuned", evaluate=False, progress=False)
    data = tmp_path / "tuned" / "data"
    assert (data / "tokenizer" / "tokenizer.json").read_bytes() == (base / "tokenizer.json").read_bytes()
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["init_from"]["weights_sha256"] == sha256_file(base / "model.safetensors")
    assert manifest["init_from"]["recipe"] == micro_recipe.name

    def first_loss(run_dir: Path) -> float:
        lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        return float(next(m["loss"] for m in lines if "loss" in m))

    # Step 1 of the fine-tune already has the trained model's loss, far below a fresh model's first step.
    assert first_loss(tmp_path / "tuned") < first_loss(micro_run) - 1.0

    out = tmp_path / "tuned-export"
    export(tmp_path / "tuned", out, recipe, force=True)
    assert "fine-tuned from" in (out / "MODEL_CARD.md").read_text()


def test_fine_tuning_refuses_a_checkpoint_of_another_shape(micro_recipe: Recipe, micro_run: Path) -> None:
    from guardserve.training.loop import build_model

    recipe = micro_recipe.with_updates(
        {"model.init_from": str(micro_run / "checkpoint"), "model.hidden_size": 32, "model.intermediate_size": 88}
    )
    with pytest.raises(ValueError, match="shape"):
        build_model(recipe, 512, 0, 1)


def test_weight_averaging_keeps_the_mean_of_the_evaluated_weights(
    micro_recipe: Recipe, micro_run: Path, tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    from guardserve.training.loop import train
    from guardserve.training.prepare import load_prepared

    prepared = load_prepared(micro_run / "data")
    updates = {"train.max_steps": 10, "train.eval_every": 5, "train.checkpoint_every": 5}
    snapshots: list[dict[str, torch.Tensor]] = []

    def keep(step: int, loss: float) -> None:  # the plain run's checkpoint holds the weights of this evaluation
        snapshots.append(load_file(str(tmp_path / "plain" / "checkpoint" / "model.safetensors")))

    train(micro_recipe.with_updates(updates), prepared, tmp_path / "plain", progress=False, on_eval=keep)
    train(micro_recipe.with_updates({**updates, "train.average_from": 5}), prepared, tmp_path / "avg", progress=False)
    averaged = load_file(str(tmp_path / "avg" / "checkpoint" / "model.safetensors"))
    assert len(snapshots) == 2 and set(averaged) == set(snapshots[0])
    for name, tensor in averaged.items():
        torch.testing.assert_close(tensor.float(), (snapshots[0][name].float() + snapshots[1][name].float()) / 2)
    assert not torch.equal(snapshots[0][name], snapshots[1][name])  # the two really differ
    lines = [json.loads(x) for x in (tmp_path / "avg" / "metrics.jsonl").read_text().splitlines()]
    assert [(m["step"], m["averaged"]) for m in lines if "avg_val_loss" in m] == [(5, 1), (10, 2)]
