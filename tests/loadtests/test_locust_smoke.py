"""CI smoke run of loadtests/locustfile.py: 10 seconds of every scenario against a real gateway (keys, limits,
the default guardrails policy, feedback) in front of the fast fake upstream; zero failures, every scenario served.
No timing thresholds: speed lives in the benchmarks."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from guardserve.app.auth.settings import AuthSettings
from guardserve.app.feedback.settings import FeedbackSettings
from guardserve.app.limits.settings import LimitSettings
from guardserve.app.main import create_app
from guardserve.app.settings import Settings
from guardserve.models.registry import ModelEntry
from tests.support.access import ADMIN_KEY, PEPPER, create_key
from tests.support.fake_upstream import FakeUpstream
from tests.support.processes import clean_env
from tests.support.servers import LiveServer, serve_in_thread
from tests.support.waits import SUBPROCESS_S

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["Chat", "StreamChat", "PIIPrompts", "AbusivePrompts", "Feedback", "AdminReads", "Mix"]
NAMES = ["chat", "chat stream", "chat pii", "chat abusive", "feedback", "admin keys", "admin usage", "TTFT"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    upstream = serve_in_thread(FakeUpstream("fast", reply="The answer is forty two.", chunks=(4,)))  # type: ignore[arg-type]
    entry = ModelEntry(name="fast", engine="openai", url=upstream.v1, upstream_model="fast", context_length=4096)
    settings = Settings(
        models=[entry],  # the default guardrails policy: guards on
        auth=AuthSettings(enabled=True, pepper=PEPPER, admin_key=ADMIN_KEY, dev_key=False),  # type: ignore[arg-type]
        limits=LimitSettings(enabled=True),
        feedback=FeedbackSettings(file=tmp_path_factory.mktemp("feedback") / "feedback.jsonl"),
    )
    server = serve_in_thread(create_app(settings))
    yield server
    server.stop()
    upstream.stop()


def test_every_scenario_runs_without_a_failure(gateway: LiveServer, tmp_path: Path) -> None:
    key = create_key(gateway, tenant="locust", limits={"requests_per_minute": 1_000_000, "concurrent": 1000})
    env = clean_env({"GUARDSERVE_LOCUST_KEY": key["key"], "GUARDSERVE_LOCUST_ADMIN_KEY": ADMIN_KEY})
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "loadtests" / "locustfile.py"), "--headless"]
    cmd += ["-u", str(len(CLASSES)), "-r", str(len(CLASSES)), "-t", "10s", "--host", gateway.url]
    cmd += ["--csv", str(tmp_path / "run"), "--only-summary", "--exit-code-on-error", "1", *CLASSES]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=SUBPROCESS_S, cwd=tmp_path)
    with (tmp_path / "run_stats.csv").open(encoding="utf-8") as table:
        rows = {row["Name"]: row for row in csv.DictReader(table)}
    failures = (tmp_path / "run_failures.csv").read_text(encoding="utf-8")
    counts = {n: (r["Request Count"], r["Failure Count"]) for n, r in rows.items()}
    assert int(rows["Aggregated"]["Failure Count"]) == 0, (failures, counts)
    served = {name: int(rows[name]["Request Count"]) if name in rows else 0 for name in NAMES}
    assert all(count > 0 for count in served.values()), served
    assert run.returncode == 0, run.stderr[-3000:]
