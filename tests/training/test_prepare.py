from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardserve.training.prepare import prepare
from guardserve.training.recipe import Recipe


@pytest.mark.slow
def test_same_seed_gives_the_same_split_and_manifest(micro_recipe: Recipe, tmp_path: Path) -> None:
    a = prepare(micro_recipe, tmp_path / "a")
    b = prepare(micro_recipe, tmp_path / "b")
    assert a.manifest == b.manifest
    assert (tmp_path / "a" / "train.jsonl").read_bytes() == (tmp_path / "b" / "train.jsonl").read_bytes()
    c = prepare(micro_recipe.with_updates({"seed": micro_recipe.seed + 1}), tmp_path / "c")
    assert c.manifest["splits"]["train"]["sha256"] != a.manifest["splits"]["train"]["sha256"]


@pytest.mark.slow
def test_manifest_and_report_carry_counts_and_hashes_not_values(micro_recipe: Recipe, tmp_path: Path) -> None:
    prepared = prepare(micro_recipe, tmp_path / "d")
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    report = json.loads((tmp_path / "d" / "report.json").read_text())
    sources = {s["name"]: s for s in manifest["sources"]}
    assert set(sources) == {"synthetic-skills", "synthetic-conversations"}
    for source in sources.values():
        assert source["licence"] and source["provenance"] and source["inputs"]
        assert all(len(i["sha256"]) == 64 for i in source["inputs"])
        assert source["rows_train"] + source["rows_val"] <= source["rows_raw"]
    assert manifest["canaries"]["planted_rows_in_train"] > 0
    pii = next(s for s in report["steps"] if s["step"] == "pii")
    assert pii["details"]["findings_by_entity"].get("EMAIL_ADDRESS", 0) > 0
    assert pii["skipped_sources"] == ["synthetic-skills"]
    # no personal data from the conversations in the manifest or the report
    emails = [m["content"] for r in prepared.train if r.task == "pii_chat" for m in r.messages or []]
    blob = json.dumps(manifest) + json.dumps(report)
    assert "@example." not in blob and all(e not in blob for e in emails)
    # and the scrubbed training data has placeholders, not addresses
    train_text = (tmp_path / "d" / "train.jsonl").read_text()
    assert "<EMAIL_ADDRESS>" in train_text and "<CREDIT_CARD>" in train_text
