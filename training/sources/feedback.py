"""Feedback exports from the gateway (``guardserve feedback export``), one JSON object per line::

    {"response_id": "...", "messages": [{"role": "user", ...}, {"role": "assistant", ...}], "rating": "up", ...}

Only conversations whose ``rating`` is in the source's ``ratings`` (default: ``up``) become training dialogues.
Exports are PII-scrubbed by the gateway already; the trainer scrubs them again like any other source.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from guardserve.training.recipe import FeedbackSource
from guardserve.training.records import Record
from guardserve.training.sources.base import Loaded, input_file
from guardserve.training.sources.jsonl import files_of, json_rows, parse_row


def load_feedback(spec: FeedbackSource, base: Path | None) -> Loaded:
    files = files_of(spec.path, "**/*.jsonl")
    records: list[Record] = []
    ratings: Counter[str] = Counter()
    bad = 0
    for row in json_rows(files):
        rating = row.get("rating") if isinstance(row, dict) else None  # a non-JSON line (None) counts as bad too
        if not isinstance(rating, str):
            bad += 1
            continue
        ratings[rating] += 1
        if rating not in spec.ratings:
            continue
        record = parse_row({"messages": row.get("messages")}, spec.name)
        if record is None:
            bad += 1
        else:
            records.append(record)
    notes = {"ratings": dict(sorted(ratings.items())), "malformed_rows": bad}
    return Loaded(records, [input_file(f, base) for f in files], notes)
