"""``guardserve feedback report``: the statistics on worked examples, a report on a real export pass (feedback on the
shared Redis under a random prefix, two checkpoints of one model, the newer clearly better), labels and hour
buckets on a hand-written ratings file, and usage errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from guardserve.app.cli import main
from guardserve.app.feedback.export import RATINGS_FILE, FeedbackExporter
from guardserve.app.feedback.model import Category, Rating
from guardserve.app.feedback.report import newcombe_difference, two_proportion_z, wilson
from tests.support import feedback_data as data

STABLE, CANDIDATE = "ab" * 32, "cd" * 32
DAY1 = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
PNG = b"\x89PNG\r\n\x1a\n"


def test_wilson_matches_newcombes_worked_examples() -> None:
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, the score method
    for (k, n), expected in {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }.items():
        assert wilson(k, n) == pytest.approx(expected, abs=5e-5)
    assert wilson(0, 0) == (0.0, 1.0)


def test_difference_interval_and_z_test_match_worked_examples() -> None:
    # Newcombe (1998), "Interval estimation for the difference between independent proportions", method 10
    for counts, (low, high) in {
        (56, 70, 48, 80): (0.0524, 0.3339),
        (9, 10, 3, 10): (0.1705, 0.8090),
        (5, 56, 0, 29): (-0.0381, 0.1926),
    }.items():
        k1, n1, k2, n2 = counts
        assert newcombe_difference(*counts) == pytest.approx((k1 / n1 - k2 / n2, low, high), abs=5e-5)
    # 56/70 vs 48/80 pooled: p = 104/150, se = sqrt(p (1 - p) (1/70 + 1/80)) = 0.07547, z = 0.2 / se
    z, p = two_proportion_z(56, 70, 48, 80)
    assert z == pytest.approx(2.6502, abs=1e-4)
    assert p == pytest.approx(0.00805, abs=1e-5)
    assert two_proportion_z(5, 5, 7, 7) == (0.0, 1.0)


async def _export(url: str, prefix: str, out: Path) -> None:
    """Stable (checkpoint ab…): 30 up, 30 down, 5 neutral (score 3) on 2026-11-01/02; candidate (cd…): 48 up
    (16 of them a score of 5), 12 down, 4 neutral, from 2026-11-02 12:00; 3 feedback whose record was not kept."""
    sync = redis.Redis.from_url(url, socket_timeout=10)
    try:
        for i in range(65):
            record = data.response("acme", f"Stable question {i}?", f"Stable answer {i}.", checkpoint=STABLE)
            rating: Rating = 3 if i >= 60 else "up" if i % 2 == 0 else "down"
            categories: tuple[Category, ...] = ()
            if rating == "down":
                categories = ("inaccurate",) if i % 4 == 1 else ("unhelpful",)
            data.put_response(sync, prefix, record)
            data.add_feedback(
                sync, prefix, data.feedback(record, rating, categories=categories, created=DAY1 + i * 1800)
            )
        for i in range(64):
            record = data.response("acme", f"Candidate question {i}?", f"Candidate answer {i}.", checkpoint=CANDIDATE)
            rating = 3 if i >= 60 else "down" if i % 5 == 0 else 5 if i % 3 == 0 else "up"
            categories = ()
            if rating == "down":
                categories = ("inaccurate", "harmful") if i % 10 == 0 else ("inaccurate",)
            created = DAY1 + 36 * 3600 + i * 1800
            data.put_response(sync, prefix, record)
            data.add_feedback(sync, prefix, data.feedback(record, rating, categories=categories, created=created))
        for i in range(3):
            record = data.response("acme", None, checkpoint=CANDIDATE)  # never stored: expired before the rating
            data.add_feedback(sync, prefix, data.feedback(record, "up", record_kept=False, created=DAY1 + i))
    finally:
        sync.close()
    client = redis.asyncio.Redis.from_url(url, socket_timeout=10)
    try:
        result = await FeedbackExporter(client, prefix, out).run()
    finally:
        await client.aclose()
    assert result.exported == 65 + 64 + 3


async def test_report_on_an_export_finds_the_better_candidate(
    shared_redis: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    await _export(*shared_redis, tmp_path / "export")

    assert main(["feedback", "report", "--export", str(tmp_path / "export"), "--out", str(tmp_path / "report")]) == 0
    assert "micro@cdcdcdcdcdcd vs micro@abababababab: candidate better at 95%" in capsys.readouterr().out

    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["read"] == {
        "export": str(tmp_path / "export"),
        "exported_at": report["read"]["exported_at"],
        "rows": 132,
        "malformed": 0,
        "unattributed": 3,
        "other_models": 0,
    }
    stable, candidate = report["versions"]
    assert (stable["version"], candidate["version"]) == ("micro@abababababab", "micro@cdcdcdcdcdcd")
    assert stable["checkpoint_sha256"] == STABLE and stable["label"] is None
    assert (stable["n"], stable["up"], stable["down"], stable["neutral"]) == (65, 30, 30, 5)
    assert (candidate["n"], candidate["up"], candidate["down"], candidate["neutral"]) == (64, 48, 12, 4)
    assert stable["up_rate"] == 0.5 and candidate["up_rate"] == 0.8
    assert stable["up_rate_ci95"] == pytest.approx([0.37735, 0.62265], abs=5e-5)  # scipy binomtest, "wilson"
    assert candidate["up_rate_ci95"] == pytest.approx([0.68218, 0.88171], abs=5e-5)
    assert (stable["mean_score"], stable["scored"]) == (3.0, 5)
    assert (candidate["mean_score"], candidate["scored"]) == (pytest.approx(4.6), 20)  # 16 fives, 4 threes
    assert stable["categories"] == {"inaccurate": 15, "unhelpful": 15}
    assert candidate["categories"] == {"inaccurate": 12, "harmful": 6}
    assert (stable["first_seen"], stable["last_seen"]) == ("2026-11-01T00:00:00Z", "2026-11-02T08:00:00Z")
    assert candidate["first_seen"] == "2026-11-02T12:00:00Z"
    # day buckets: stable 48 ratings on the 1st (24 up, 24 down), 17 on the 2nd (6, 6, 5 neutral); the candidate
    # from noon on the 2nd: 24 ratings (19 up, 5 down), then 40 on the 3rd (29 up, 7 down, 4 neutral)
    buckets = {key: (t["n"], t["up"], t["down"]) for key, t in stable["buckets"].items()}
    assert buckets == {"2026-11-01": (48, 24, 24), "2026-11-02": (17, 6, 6)}
    buckets = {key: (t["n"], t["up"], t["down"]) for key, t in candidate["buckets"].items()}
    assert buckets == {"2026-11-02": (24, 19, 5), "2026-11-03": (40, 29, 7)}
    assert candidate["buckets"]["2026-11-02"]["up_rate_ci95"] == pytest.approx(wilson(19, 24))

    (comparison,) = report["comparisons"]
    assert comparison["chosen"].startswith("automatic")
    assert (comparison["stable"], comparison["candidate"]) == ("micro@abababababab", "micro@cdcdcdcdcdcd")
    assert comparison["difference"] == pytest.approx(0.3)
    assert comparison["difference_ci95"] == pytest.approx([0.1299, 0.4474], abs=5e-5)
    assert comparison["z"] == pytest.approx(3.445, abs=1e-3)
    assert comparison["p_value"] < 0.001
    assert comparison["verdict"] == "candidate better at 95%"

    md = (tmp_path / "report" / "report.md").read_text()
    assert "| `micro@abababababab` | – | 65 | 30 | 30 | 5 | 0.500 [0.377, 0.623] (30/60) |" in md
    assert "| candidate | 64 | 48 | 12 | 4 | 0.800 [0.682, 0.882] (48/60) |" in md
    assert "Newcombe 95% [+0.130, +0.447]" in md and "**Verdict: candidate better at 95%.**" in md
    assert "![up-rate per version over time](uprate.png)" in md
    for name in ("uprate.png", "categories.png"):
        assert (tmp_path / "report" / name).read_bytes()[:8] == PNG


def _row(model: str | None, sha: str | None, rating: str, created: int, **extra: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "feedback_id": f"fb-{created}-{rating}",
        "response_id": "chatcmpl-1",
        "tenant": "acme",
        "model": model,
        "checkpoint_sha256": sha,
        "rating": rating,
        "score": None,
        "categories": [],
        "created": created,
        "comment": None,
        "has_dialogue": False,
        "record_kept": model is not None,
        **extra,
    }


def _write(folder: Path, rows: list[dict[str, Any]], *, junk: bytes = b"") -> None:
    file = folder / RATINGS_FILE
    file.parent.mkdir(parents=True)
    file.write_bytes(b"".join(json.dumps(row).encode() + b"\n" for row in rows) + junk)


def test_labels_hour_buckets_and_no_matplotlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three versions of one model (so no automatic comparison), chosen by label and by sha prefix; a row of
    another model and a malformed line are left out; without matplotlib the Markdown and JSON are still written."""
    rows = [
        _row("tiny", "11" * 32, "up" if i < 6 else "down", DAY1 + i * 60, model_version="stable") for i in range(10)
    ]
    rows += [
        _row("tiny", "22" * 32, "up" if i < 5 else "down", DAY1 + 3600 + i, version_label="canary") for i in range(10)
    ]
    rows += [_row("tiny", "33" * 32, "up" if i < 1 else "down", DAY1 + 7200 + i) for i in range(20)]
    rows += [_row("other", "44" * 32, "up", DAY1)]
    _write(tmp_path / "export", rows, junk=b'{"version": 1, "rating": "sideways"}\n')
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError

    argv = ["feedback", "report", "--export", str(tmp_path / "export"), "--model", "tiny", "--bucket", "hour"]
    assert main([*argv, "--out", str(tmp_path / "a"), "--stable", "stable", "--candidate", "canary"]) == 0
    out = capsys.readouterr()
    assert "tiny@222222222222 vs tiny@111111111111: no significant difference at 95%" in out.out
    assert "PNG skipped: matplotlib is not installed" in out.err
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["read"]["malformed"] == 1 and report["read"]["other_models"] == 1
    assert [(v["version"], v["label"]) for v in report["versions"]] == [
        ("tiny@111111111111", "stable"),
        ("tiny@222222222222", "canary"),
        ("tiny@333333333333", None),
    ]
    assert list(report["versions"][0]["buckets"]) == ["2026-11-01T00:00Z"]
    (comparison,) = report["comparisons"]
    assert comparison["difference"] == pytest.approx(-0.1)
    assert comparison["difference_ci95"] == pytest.approx(newcombe_difference(5, 10, 6, 10)[1:])
    assert report["plots"] == {"files": [], "skipped": report["plots"]["skipped"]}
    assert not (tmp_path / "a" / "uprate.png").exists()
    assert "PNG plots skipped" in (tmp_path / "a" / "report.md").read_text()

    assert main([*argv, "--out", str(tmp_path / "b"), "--stable", "1111", "--candidate", "3333"]) == 0
    assert "tiny@333333333333 vs tiny@111111111111: candidate worse at 95%" in capsys.readouterr().out

    assert main([*argv, "--out", str(tmp_path / "c")]) == 0  # three versions: nothing chosen automatically
    assert json.loads((tmp_path / "c" / "report.json").read_text())["comparisons"] == []
    assert "give --stable and --candidate" in (tmp_path / "c" / "report.md").read_text()


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--out", str(tmp_path / "out")]
    assert main(["feedback", "report", "--export", str(tmp_path / "missing"), *out]) == 2
    assert "no such export folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["feedback", "report", "--export", str(tmp_path / "empty"), *out]) == 2
    assert f"no {RATINGS_FILE}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()

    _write(tmp_path / "export", [_row("tiny", "11" * 32, "up", DAY1), _row("tiny", "12" * 32, "up", DAY1 + 1)])
    export = ["feedback", "report", "--export", str(tmp_path / "export"), *out]
    assert main([*export, "--stable", "99", "--candidate", "11"]) == 2
    assert "--stable 99 matches no version" in capsys.readouterr().err
    assert main([*export, "--stable", "1", "--candidate", "12"]) == 2
    assert "--stable 1 is ambiguous" in capsys.readouterr().err
    assert main([*export, "--stable", "11"]) == 2
    assert "go together" in capsys.readouterr().err
    assert main([*export, "--model", "tinny"]) == 2
    assert "--model tinny: no ratings of it; models rated: tiny" in capsys.readouterr().err
    (tmp_path / "export" / "manifest.json").write_text("{")
    assert main(export) == 2
    assert "manifest.json: not JSON" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([*export, "--bucket", "week"])
    assert exit_.value.code == 2


def test_the_report_imports_neither_the_trainer_nor_matplotlib_up_front() -> None:
    code = (
        "import sys, guardserve.app.feedback.report, guardserve.app.cli; guardserve.app.cli._parser(); "
        "print(sorted(m for m in sys.modules if m.startswith(('guardserve.training', 'matplotlib'))))"
    )
    root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr
