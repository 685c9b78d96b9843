from __future__ import annotations

from pathlib import Path

import pytest

from guardserve.training.recipe import RecipeError, load_recipe
from tests.support.waits import SUBPROCESS_S

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["default", "micro", "canary"])
def test_shipped_recipes_load(name: str) -> None:
    recipe = load_recipe(ROOT / "training" / "recipes" / f"{name}.yaml")
    assert recipe.data.sources
    assert recipe.train.seq_len <= recipe.model.context_length


def test_default_recipe_is_the_documented_shape() -> None:
    recipe = load_recipe(ROOT / "training" / "recipes" / "default.yaml")
    m = recipe.model
    assert (m.hidden_size, m.num_layers, m.hidden_size // m.num_heads) == (256, 4, 64)
    assert recipe.train.weight_decay == 1.0 and recipe.train.mixed_precision == "no"
    t = recipe.eval.thresholds
    assert (t.arithmetic_exact_match, t.refusal_rate, t.over_refusal_rate) == (0.95, 0.95, 0.05)


def test_errors_name_the_file_line_and_field(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(
        "name: bad\n"
        "data:\n"
        "  sources:\n"
        "    - name: s\n"
        "      kind: synthetic\n"
        "      licence: x\n"
        "      provenance: y\n"
        "      tasks: {arithmetic: 10}\n"
        "train:\n"
        "  lr: -1\n"
    )
    with pytest.raises(RecipeError) as error:
        load_recipe(file)
    assert f"{file}:10: train.lr" in str(error.value)


def test_unknown_fields_and_kinds_are_rejected(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text("name: bad\ndata:\n  sources:\n    - {name: s, kind: ftp, licence: x, provenance: y}\nmodle: {}\n")
    with pytest.raises(RecipeError) as error:
        load_recipe(file)
    text = str(error.value)
    assert "data.sources.0" in text and ":4:" in text
    assert "modle" in text


def test_skipping_a_step_needs_a_reason(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(
        "name: bad\ndata:\n  sources:\n    - {name: s, kind: synthetic, licence: x, provenance: y, "
        "tasks: {arithmetic: 1}, skip: [pii]}\n"
    )
    with pytest.raises(RecipeError, match="skip_reason"):
        load_recipe(file)


def test_relative_paths_resolve_against_the_recipe(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    file = tmp_path / "r.yaml"
    file.write_text("name: r\ndata:\n  sources:\n    - {name: s, kind: jsonl, licence: x, provenance: y, path: data}\n")
    recipe = load_recipe(file)
    assert recipe.data.sources[0].path == (tmp_path / "data").resolve()  # type: ignore[union-attr]


def test_with_updates_validates(tmp_path: Path) -> None:
    recipe = load_recipe(ROOT / "training" / "recipes" / "micro.yaml")
    assert recipe.with_updates({"train.lr": 1e-3}).train.lr == 1e-3
    assert recipe.with_updates({"preprocess.pii": None}).preprocess.pii is None
    with pytest.raises(ValueError):
        recipe.with_updates({"train.seq_len": 100_000})


def test_the_gateway_never_imports_the_trainer() -> None:
    import subprocess
    import sys

    for package in ("app", "models"):
        for file in (ROOT / package).rglob("*.py"):
            text = file.read_text()
            assert "from guardserve.training" not in text.replace("from guardserve.training.cli import main", "") and (
                "import guardserve.training" not in text
            ), file
    code = (
        "import sys, guardserve.app.cli; guardserve.app.cli._parser().parse_args(['serve']); "
        "print('guardserve.training' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_S)
    assert out.stdout.strip() == "False", out.stderr
