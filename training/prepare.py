"""From the recipe's sources to a prepared dataset: load, plant canaries, preprocess, split, train the tokenizer,
and write the data manifest (sources, licences, row counts, sha256 of every input and output) and the
preprocessing report (counts per step). Same recipe and seed -> same split and same manifest.

Layout of ``DIR``::

    manifest.json   report.json   train.jsonl   val.jsonl   tokenizer/
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from guardserve.models.checkpoint import sha256_file
from guardserve.training.preprocess import run_pipeline
from guardserve.training.recipe import Recipe
from guardserve.training.records import Record, read_jsonl, write_jsonl
from guardserve.training.sources import load_source
from guardserve.training.synthetic.split import held_out
from guardserve.training.tokenizer import adopt_tokenizer, build_tokenizer

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
REPORT = "report.json"


@dataclass(frozen=True)
class Prepared:
    directory: Path
    train: list[Record]
    val: list[Record]
    manifest: dict[str, Any]

    @property
    def tokenizer_dir(self) -> Path:
        return self.directory / "tokenizer"


def prepare(recipe: Recipe, directory: Path, base: Path | None = None) -> Prepared:
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    records: list[Record] = []
    sources: list[dict[str, Any]] = []
    raw_rows: Counter[str] = Counter()
    for spec in recipe.data.sources:
        t0 = time.perf_counter()
        loaded = load_source(spec, recipe, base)
        records.extend(loaded.records)
        raw_rows[spec.name] = len(loaded.records)
        sources.append(
            {
                "name": spec.name,
                "kind": spec.kind,
                "licence": spec.licence,
                "provenance": spec.provenance,
                "skipped_steps": list(spec.skip),
                "skip_reason": spec.skip_reason,
                "inputs": [f.to_json() for f in loaded.inputs],
                "rows_raw": len(loaded.records),
                "notes": loaded.notes,
            }
        )
        log.info("source %s: %d rows in %.1f s", spec.name, len(loaded.records), time.perf_counter() - t0)
    skips = {spec.name: tuple(spec.skip) for spec in recipe.data.sources}
    cleaned, steps = run_pipeline(records, recipe.preprocess, skips)
    train, val = split(cleaned, recipe.seed, recipe.data.validation_fraction)
    write_jsonl(directory / "train.jsonl", train)
    write_jsonl(directory / "val.jsonl", val)
    t0 = time.perf_counter()
    init_from = recipe.model.init_from
    if init_from is None:
        tokenizer = build_tokenizer(
            train, recipe.tokenizer.vocab_size, directory / "tokenizer", recipe.model.context_length
        )
    else:
        tokenizer = adopt_tokenizer(init_from, directory / "tokenizer")
    tokenizer_seconds = time.perf_counter() - t0

    kept_train = Counter(r.source for r in train)
    kept_val = Counter(r.source for r in val)
    for entry in sources:
        entry["rows_train"] = kept_train[entry["name"]]
        entry["rows_val"] = kept_val[entry["name"]]
    canary_rows = sum(1 for r in train if r.task == "canary")
    manifest = {
        "recipe": recipe.name,
        "data_fingerprint": recipe.data_fingerprint(),
        "seed": recipe.seed,
        "sources": sources,
        "canaries": {**recipe.data.canaries.model_dump(), "planted_rows_in_train": canary_rows},
        "splits": {
            "validation_fraction": recipe.data.validation_fraction,
            "train": {"rows": len(train), "sha256": sha256_file(directory / "train.jsonl")},
            "val": {"rows": len(val), "sha256": sha256_file(directory / "val.jsonl")},
        },
        "tasks_train": dict(sorted(Counter(r.task or "(none)" for r in train).items())),
        "tokenizer": {
            "vocab_size": tokenizer.get_vocab_size(),
            "sha256": sha256_file(directory / "tokenizer" / "tokenizer.json"),
        },
    }
    if init_from is not None:
        manifest["init_from"] = {
            "path": str(init_from),
            "weights_sha256": sha256_file(init_from / "model.safetensors"),
            "recipe": _recipe_name(init_from),
        }
    report = {
        "recipe": recipe.name,
        "rows_in": len(records),
        "rows_out": len(cleaned),
        "steps": [s.to_json() for s in steps],
        "seconds": {
            "total": round(time.perf_counter() - started, 2),
            "tokenizer": round(tokenizer_seconds, 2),
        },
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (directory / REPORT).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return Prepared(directory, train, val, manifest)


def _recipe_name(checkpoint: Path) -> str | None:
    """The recipe an export (``DIR/recipe.yaml``) or a run's checkpoint (``RUN/checkpoint``) was trained from."""
    for recipe in (checkpoint / "recipe.yaml", checkpoint.parent / "recipe.yaml"):
        if recipe.is_file():
            name = yaml.safe_load(recipe.read_text()).get("name")
            return str(name) if name else None
    return None


def load_prepared(directory: Path) -> Prepared:
    manifest = json.loads((directory / MANIFEST).read_text())
    train = list(read_jsonl(directory / "train.jsonl"))
    val = list(read_jsonl(directory / "val.jsonl"))
    return Prepared(directory, train, val, manifest)


def split(records: list[Record], seed: int, fraction: float) -> tuple[list[Record], list[Record]]:
    """Deterministic: a record's own hash (and the seed) decides. Planted canaries always train."""
    train: list[Record] = []
    val: list[Record] = []
    for record in records:
        if record.task != "canary" and held_out("val", seed, record.key(), fraction=fraction):
            val.append(record)
        else:
            train.append(record)
    return train, val
