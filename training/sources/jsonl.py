"""JSONL files: ``{"messages": [{"role", "content"}, ...]}`` chat rows or ``{"text": ...}`` rows.

``path`` is a file or a folder of ``*.jsonl`` files. Malformed rows are skipped and counted (never echoed: they
may hold personal data).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from guardserve.training.recipe import JsonlSource
from guardserve.training.records import ROLES, Record
from guardserve.training.sources.base import Loaded, input_file


def files_of(path: Path, pattern: str) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"data source {path} does not exist")
    return sorted(p for p in path.glob(pattern) if p.is_file())


def json_rows(files: list[Path]) -> Iterator[Any]:
    """Every non-blank line of ``files``, parsed; ``None`` for a line that is not JSON (the caller counts it)."""
    for file in files:
        with file.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    yield None


def parse_row(row: Any, source: str) -> Record | None:
    if not isinstance(row, dict):
        return None
    if isinstance(row.get("text"), str):
        return Record(source, text=row["text"])
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    clean: list[dict[str, str]] = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            return None
        clean.append({"role": m["role"], "content": m["content"]})
    if not any(m["role"] == "assistant" for m in clean):
        return None
    return Record(source, messages=clean)


def load_jsonl(spec: JsonlSource, base: Path | None) -> Loaded:
    records: list[Record] = []
    bad = 0
    files = files_of(spec.path, "**/*.jsonl")
    for row in json_rows(files):
        record = parse_row(row, spec.name)
        if record is None:
            bad += 1
        else:
            records.append(record)
    return Loaded(records, [input_file(f, base) for f in files], {"malformed_rows": bad})
