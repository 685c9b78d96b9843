"""Loading one source: records, and for the manifest every input file's sha256 and size."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardserve.models.checkpoint import sha256_file
from guardserve.training.recipe import FeedbackSource, JsonlSource, Recipe, SyntheticSource, TextDirSource
from guardserve.training.records import Record


@dataclass(frozen=True)
class InputFile:
    path: str  # relative to the recipe's folder when inside it
    sha256: str
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "bytes": self.bytes}


@dataclass
class Loaded:
    records: list[Record]
    inputs: list[InputFile]
    notes: dict[str, Any] = field(default_factory=dict)  # counts only (skipped lines, ratings, tasks)


def input_file(path: Path, base: Path | None) -> InputFile:
    shown = str(path)
    if base is not None:
        try:
            shown = str(path.resolve().relative_to(base.resolve()))
        except ValueError:
            shown = str(path)
    return InputFile(shown, sha256_file(path), path.stat().st_size)


def load_source(spec: object, recipe: Recipe, base: Path | None = None) -> Loaded:
    if isinstance(spec, JsonlSource):
        from guardserve.training.sources.jsonl import load_jsonl

        return load_jsonl(spec, base)
    if isinstance(spec, TextDirSource):
        from guardserve.training.sources.text_dir import load_text_dir

        return load_text_dir(spec, base)
    if isinstance(spec, FeedbackSource):
        from guardserve.training.sources.feedback import load_feedback

        return load_feedback(spec, base)
    if isinstance(spec, SyntheticSource):
        from guardserve.training.sources.synthetic import load_synthetic

        return load_synthetic(spec, recipe, base)
    raise TypeError(f"unknown source {spec!r}")
