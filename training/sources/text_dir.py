"""A folder of plain-text files; each paragraph (text between blank lines) becomes one text record."""

from __future__ import annotations

import re
from pathlib import Path

from guardserve.training.recipe import TextDirSource
from guardserve.training.records import Record
from guardserve.training.sources.base import Loaded, input_file
from guardserve.training.sources.jsonl import files_of

_PARAGRAPHS = re.compile(r"\n\s*\n")


def load_text_dir(spec: TextDirSource, base: Path | None) -> Loaded:
    files = files_of(spec.path, spec.pattern)
    records: list[Record] = []
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        for paragraph in _PARAGRAPHS.split(text):
            if paragraph.strip():
                records.append(Record(spec.name, text=paragraph.strip()))
    return Loaded(records, [input_file(f, base) for f in files], {"files": len(files)})
