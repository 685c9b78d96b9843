"""The pure parts of loadtests/vllm_parity.py (the vLLM install and the servers are not run here): the registry it
writes is one the gateway loads, and the comparison counts, locates and reports differences correctly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from guardserve.models.registry import load_registry
from tests.support.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


parity = load_script(ROOT / "loadtests" / "vllm_parity.py")
Answer = parity.Answer


def test_registry_serves_one_checkpoint_on_both_engines(tmp_path: Path) -> None:
    checkpoint = ROOT / "models" / "checkpoints" / "guardserve-tiny"
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(parity.registry("guardserve-tiny", checkpoint, "http://127.0.0.1:9/v1", 512)))
    entries = {entry.name: entry for entry in load_registry(path)}
    assert set(entries) == {"guardserve-tiny-cpu", "guardserve-tiny-vllm"}
    cpu, vllm = entries["guardserve-tiny-cpu"], entries["guardserve-tiny-vllm"]
    assert (cpu.engine, cpu.checkpoint, cpu.context_length) == ("cpu", checkpoint, 512)
    assert (vllm.engine, vllm.url, vllm.upstream_model) == ("openai", "http://127.0.0.1:9/v1", "guardserve-tiny")
    assert (vllm.context_length, vllm.tokenizer) == (512, checkpoint)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("abc", "abc", None), ("abc", "abd", 2), ("ab", "abc", 2), ("abc", "a", 1), ("", "x", 0), ([1, 2], [1, 3], 1)],
)
def test_first_difference(a: str, b: str, expected: int | None) -> None:
    assert parity.first_difference(a, b) == expected


def test_compare_counts_identical_answers_and_locates_mismatches() -> None:
    prompts = ["p1", "p2", "p3", "p4"]
    cpu = [Answer("4 + 4 = 8"), Answer(error="content_filter"), Answer("The capital is Paris."), Answer("yes")]
    vllm = [Answer("4 + 4 = 8"), Answer(error="content_filter"), Answer("The capital is Rome."), Answer(error="502")]
    report = parity.compare("m", prompts, cpu, vllm, tokenize=lambda text: text.split())
    assert (report.n, report.identical, report.both_refused) == (4, 2, 1)
    assert (report.answered, report.answered_identical) == (2, 1)
    assert report.rate == 0.5
    lo, hi = report.interval
    assert 0.14 < lo < 0.16 and 0.84 < hi < 0.86  # Wilson 95% for 2 of 4: [0.150, 0.850]
    first, second = report.mismatches
    assert first["prompt"] == "p3" and first["first_char"] == 15 and first["first_token"] == 3
    assert second == {"prompt": "p4", "cpu": "yes", "vllm": "<error 502>"}  # no position without two texts
    assert parity.summary_line(report) == (
        "m: 2/4 (50.0 % [15.0, 85.0]) identical (Wilson 95%); 1 refused by the gateway on both sides; "
        "both engines answered 2: 1/2 (50.0 % [9.5, 90.5]) identical"
    )
    assert parity.rate_text(0, 0) == "0/0"


def test_compare_refuses_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="2 prompts, 1 CPU answers"):
        parity.compare("m", ["a", "b"], [Answer("x")], [Answer("x"), Answer("y")])


def test_prompts_are_fixed() -> None:
    tiny = parity.tiny_prompts(60)
    assert tiny == parity.tiny_prompts(60) and len(tiny) == 60 and len(set(tiny)) > 40
    smol = parity.smol_prompts(5)
    assert len(smol) == 5 and all(isinstance(p, str) and p for p in smol)
    assert smol[0] == parity.smol_prompts(1)[0]
