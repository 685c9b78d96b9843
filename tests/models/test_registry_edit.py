"""guardserve models candidate|promote|rollback: the registry file changes as said, and only into a valid one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from guardserve.app.cli import main
from guardserve.models.registry import load_registry

REGISTRY = """models:
  tiny:
    engine: cpu
    checkpoint: checkpoints/tiny
    label: v1
  other:
    engine: openai
    url: http://127.0.0.1:9/v1
    context_length: 2048
"""


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY)
    return path


def run(*argv: str) -> int:
    return main(["models", *argv])


def test_candidate_then_promote(registry: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("candidate", "tiny", "--registry", str(registry), "--label", "v2", "--percent", "10",
               "--checkpoint", "runs/dpo/checkpoint") == 0  # fmt: skip
    (tiny, other) = load_registry(registry)
    assert tiny.candidate is not None and (tiny.candidate.label, tiny.candidate.percent) == ("v2", 10.0)
    assert tiny.candidate.checkpoint == (registry.parent / "runs/dpo/checkpoint").resolve()
    assert other.url == "http://127.0.0.1:9/v1" and other.candidate is None  # the rest is as it was
    assert json.loads(capsys.readouterr().out)["tiny"]["candidate"]["label"] == "v2"
    assert run("promote", "tiny", "--registry", str(registry)) == 0
    (tiny, _) = load_registry(registry)
    assert (tiny.version, tiny.candidate) == ("v2", None)
    assert tiny.checkpoint == (registry.parent / "runs/dpo/checkpoint").resolve()
    assert yaml.safe_load(registry.read_text())["models"]["tiny"]["checkpoint"] == "runs/dpo/checkpoint"  # relative


def test_rollback_drops_the_candidate(registry: Path) -> None:
    assert run("candidate", "tiny", "--registry", str(registry), "--label", "v2", "--percent", "50",
               "--checkpoint", "x") == 0  # fmt: skip
    assert run("rollback", "tiny", "--registry", str(registry)) == 0
    (tiny, _) = load_registry(registry)
    assert (tiny.version, tiny.candidate) == ("v1", None)
    assert tiny.checkpoint == (registry.parent / "checkpoints/tiny").resolve()


def test_what_would_break_the_registry_is_refused_and_the_file_left_alone(
    registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = registry.read_text()
    assert run("promote", "tiny", "--registry", str(registry)) == 2  # no candidate
    assert run("rollback", "nope", "--registry", str(registry)) == 2  # no such model
    # a cpu candidate without a checkpoint, and a share over 100 %: the new registry would not load
    assert run("candidate", "tiny", "--registry", str(registry), "--label", "v2", "--percent", "5") == 2
    assert run("candidate", "tiny", "--registry", str(registry), "--label", "v2", "--percent", "150",
               "--checkpoint", "x") == 2  # fmt: skip
    assert registry.read_text() == before and list(registry.parent.iterdir()) == [registry]  # no temp file left
    err = capsys.readouterr().err
    assert "no candidate to promote" in err and "no model 'nope'" in err and "needs 'checkpoint'" in err
