"""Reading the evaluation sets (``evaluation/guards/*.jsonl``, see the issue's contract): one JSON object a line.

``limit`` takes a seeded random sample that keeps the file order, not the first lines: the sets may be written
grouped by label or kind, and a quick run should still see both classes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

SAMPLE_SEED = 12


def read_jsonl(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{number}: expected a JSON object")
            rows.append(row)
    return sample(rows, limit)


def sample(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    if limit is None or len(rows) <= limit:
        return rows
    keep = sorted(random.Random(SAMPLE_SEED).sample(range(len(rows)), limit))
    return [rows[i] for i in keep]


def set_path(sets: Path, name: str, split: str | None = None) -> Path:
    """``toxicity`` + ``dev`` -> ``DIR/toxicity.dev.jsonl``; no split -> ``DIR/NAME.jsonl`` (the harmless prompts'
    test split)."""
    return sets / (f"{name}.{split}.jsonl" if split else f"{name}.jsonl")
