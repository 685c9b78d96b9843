"""loadtests/improve_loop.py on the bundled tiny model, a few prompts a week: the whole loop runs through the real
gateway (keys, Redis, scrubbed records, feedback, export, improve, reload, canary, report) and says what it saw.
The numbers at the default model's scale are the script's own run (README); this checks the plumbing only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.scripts import load_script

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "models" / "checkpoints" / "guardserve-tiny"


@pytest.mark.slow
def test_the_loop_runs_end_to_end_on_the_tiny_model(tmp_path: Path, shared_redis: tuple[str, str]) -> None:
    module = load_script(ROOT / "loadtests" / "improve_loop.py")
    chat_set = tmp_path / "set.jsonl"
    items = [json.loads(line) for line in (ROOT / "evaluation" / "smol" / "dev.jsonl").read_text().splitlines()]
    chat_set.write_text("".join(json.dumps(i) + "\n" for i in items[::10]))  # 14 items: plumbing, not numbers
    out = tmp_path / "loop"
    argv = ["--model", "guardserve-tiny", "--checkpoint", str(TINY), "--base", str(TINY), "--out", str(out)]
    argv += ["--redis", shared_redis[0], "--limit", "16", "--users-per-prompt", "2", "--steps", "2", "--lora-rank", "2"]
    # every regression tolerated, so that the candidate always reaches the canary (the gate itself: test_preference)
    argv += ["--tolerance", "1", "--gate-set", str(chat_set), "--test-set", str(chat_set), "--max-tokens", "24"]
    assert module.main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sum(sum(r.values()) for r in summary["week1"]["v1"].values()) == 16  # every answer rated, by v1
    assert summary["export1"]["exported"] == 16 and summary["gate"]["passed"]
    assert set(summary["reload"]["started"]) == {"guardserve-tiny@v2"}, summary["reload"]
    assert set(summary["week2"]) == {"v1", "v2"}  # 32 users on a 50 % canary: both versions answered
    assert sum(sum(sum(r.values()) for r in kinds.values()) for kinds in summary["week2"].values()) == 32
    assert {v["label"] for v in summary["report"]["versions"]} == {"v1", "v2"}  # the report compares the two
    assert summary["report"]["comparisons"][0]["verdict"]
    assert set(summary["test_set"]) == {"stable", "candidate"}
    assert "## week2" in (out / "summary.md").read_text()
