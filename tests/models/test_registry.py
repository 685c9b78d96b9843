from __future__ import annotations

from pathlib import Path

import pytest

from guardserve.models.registry import DEFAULT_REGISTRY, RegistryError, load_registry


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    return path


def test_bundled_registry_loads() -> None:
    entries = load_registry(DEFAULT_REGISTRY)
    assert entries and all(e.engine in ("cpu", "openai") for e in entries)


def test_relative_checkpoints_resolve_against_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "models:\n  a:\n    engine: cpu\n    checkpoint: ckpt/a\n")
    (entry,) = load_registry(path)
    assert entry.name == "a" and entry.checkpoint == (tmp_path / "ckpt" / "a").resolve()


def test_openai_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "models:\n  big:\n    engine: openai\n    url: http://vllm:8000/v1\n"
        "    upstream_model: org/Big\n    context_length: 8192\n",
    )
    (entry,) = load_registry(path)
    assert (entry.url, entry.upstream_model, entry.context_length) == ("http://vllm:8000/v1", "org/Big", 8192)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("models: [", "not valid YAML"),
        ("models: {}\n", "models"),
        ("other: 1\n", "models: Field required"),
        ("models:\n  a:\n    engine: tpu\n", "model 'a': engine"),
        ("models:\n  a:\n    engine: cpu\n", "needs 'checkpoint'"),
        ("models:\n  a:\n    engine: openai\n    url: http://x/v1\n", "needs 'url' and 'context_length'"),
        ("models:\n  a:\n    engine: cpu\n    checkpoint: x\n    colour: red\n", "colour"),
        ("models:\n  'bad name!':\n    engine: cpu\n    checkpoint: x\n", "name"),
    ],
)
def test_bad_registry_says_where_and_why(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RegistryError) as err:
        load_registry(path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_missing_registry_file(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="cannot read"):
        load_registry(tmp_path / "nope.yaml")
