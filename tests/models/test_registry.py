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
        (
            "models:\n  a:\n    engine: cpu\n    checkpoint: x\n    candidate: {label: v2, percent: 5}\n",
            "candidate of an engine 'cpu' model needs 'checkpoint'",
        ),
        (
            "models:\n  a:\n    engine: cpu\n    checkpoint: x\n    label: v1\n"
            "    candidate: {label: v1, percent: 5, checkpoint: y}\n",
            "label of its own",
        ),
        (
            "models:\n  a:\n    engine: cpu\n    checkpoint: x\n"
            "    candidate: {label: v2, percent: 120, checkpoint: y}\n",
            "percent",
        ),
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


def test_a_candidate_is_an_entry_of_its_own_with_the_stable_ones_other_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "models:\n  a:\n    engine: cpu\n    checkpoint: ckpt/a\n    label: v1\n    context_length: 256\n"
        "    candidate:\n      label: v2\n      percent: 12.5\n      checkpoint: runs/dpo/checkpoint\n",
    )
    (entry,) = load_registry(path)
    assert entry.version == "v1" and entry.candidate is not None and entry.candidate.percent == 12.5
    candidate = entry.candidate_entry()
    assert candidate is not None
    assert (candidate.name, candidate.version, candidate.context_length) == ("a", "v2", 256)
    assert candidate.checkpoint == (tmp_path / "runs" / "dpo" / "checkpoint").resolve()
    assert candidate.candidate is None and entry.checkpoint == (tmp_path / "ckpt" / "a").resolve()


def test_an_unlabelled_entry_is_the_stable_version_and_has_no_candidate(tmp_path: Path) -> None:
    (entry,) = load_registry(write(tmp_path, "models:\n  a:\n    engine: cpu\n    checkpoint: x\n"))
    assert entry.version == "stable" and entry.candidate_entry() is None
