"""The metrics module on its own: the recording API features call, bounded labels, TTFT/TPOT arithmetic."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guardserve.app.context import RequestContext
from guardserve.app.observability import multiproc
from guardserve.app.observability.labels import NamedLabel, status_label
from guardserve.app.observability.metrics import GatewayMetrics, time_per_output_token, time_to_first_token
from guardserve.app.observability.recorder import MetricsRecorder, NoMetrics
from tests.support.metrics import delta, key, parse
from tests.support.waits import SUBPROCESS_S


def snapshot(metrics: GatewayMetrics) -> dict[str, float]:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return parse(body.decode())


def test_each_app_has_its_own_registry() -> None:
    first, second = GatewayMetrics(), GatewayMetrics()  # would raise "Duplicated timeseries" on a shared one
    first.feedback("up")
    assert first.registry.get_sample_value("guardserve_feedback_total", {"rating": "up"}) == 1
    assert second.registry.get_sample_value("guardserve_feedback_total", {"rating": "up"}) == 0


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (
            lambda m: m.guard_action("pii", "input", "redact"),
            {key("guardserve_guard_actions_total", guard="pii", stage="input", action="redact"): 1},
        ),
        (
            lambda m: m.guard_duration("toxicity", "output", 0.004),
            {key("guardserve_guard_duration_seconds_count", guard="toxicity", stage="output"): 1},
        ),
        (
            lambda m: m.ratelimit_decision("tokens", "limited"),
            {key("guardserve_ratelimit_decisions_total", limit="tokens", result="limited"): 1},
        ),
        (lambda m: m.ratelimit_degraded(True), {"guardserve_ratelimit_backend_degraded{}": 1}),
        (lambda m: m.feedback("down"), {key("guardserve_feedback_total", rating="down"): 1}),
    ],
    ids=["guard_action", "guard_duration", "ratelimit_decision", "ratelimit_degraded", "feedback"],
)
def test_recording_api_moves_exactly_one_series(call: object, expected: dict[str, float]) -> None:
    metrics = GatewayMetrics()
    before = snapshot(metrics)
    call(metrics)  # type: ignore[operator]
    assert delta(before, snapshot(metrics)) == expected


def test_recorders_satisfy_the_protocol() -> None:
    recorders: list[MetricsRecorder] = [GatewayMetrics(), NoMetrics()]
    for recorder in recorders:
        recorder.guard_action("pii", "input", "block")
        recorder.ratelimit_degraded(False)


def test_label_values_outside_the_fixed_sets_become_other() -> None:
    metrics = GatewayMetrics()
    metrics.guard_action("Jane Doe <jane@example.com>", "input", "allow")
    metrics.guard_action("pii", "sideways", "explode")  # type: ignore[arg-type]
    metrics.ratelimit_decision("key-sk-123", "maybe")  # type: ignore[arg-type]
    metrics.feedback("5 stars")  # type: ignore[arg-type]
    metrics.engine_error("never-registered", "gremlins")
    text = metrics.exposition()[0].decode()
    for raw in ("Jane", "jane@example.com", "sideways", "explode", "sk-123", "maybe", "5 stars", "gremlins"):
        assert raw not in text
    samples = parse(text)
    assert samples[key("guardserve_guard_actions_total", guard="other", stage="input", action="allow")] == 1
    assert samples[key("guardserve_guard_actions_total", guard="pii", stage="other", action="other")] == 1
    assert samples[key("guardserve_ratelimit_decisions_total", limit="other", result="other")] == 1
    assert samples[key("guardserve_feedback_total", rating="other")] == 1
    assert samples[key("guardserve_engine_errors_total", engine="none", kind="other")] == 1


def test_named_labels_are_capped() -> None:
    label = NamedLabel("guard", cap=3)
    assert [label(f"g{i}") for i in range(5)] == ["g0", "g1", "g2", "other", "other"]
    assert label("g1") == "g1"  # known values stay


def test_status_label() -> None:
    assert status_label(200, disconnected=False) == "200"
    assert status_label(200, disconnected=True) == "499"  # left mid-stream
    assert status_label(None, disconnected=False) == "500"  # failed before a response started
    assert status_label(1234, disconnected=False) == "500"


def test_ttft_and_tpot_as_vllm_defines_them() -> None:
    ctx = RequestContext(request_id="r", route="/", started=100.0)
    assert time_to_first_token(ctx) is None and time_per_output_token(ctx) is None
    ctx.first_token_at, ctx.last_token_at, ctx.completion_tokens = 100.25, 100.25, 1
    assert time_to_first_token(ctx) == 0.25
    assert time_per_output_token(ctx) is None  # one token: no interval
    ctx.last_token_at, ctx.completion_tokens = 101.25, 11
    assert time_per_output_token(ctx) == pytest.approx(0.1)  # (101.25 - 100.25) / (11 - 1)


def test_request_recording_uses_registry_names_only() -> None:
    metrics = GatewayMetrics()
    metrics.set_models(["tiny"])
    ctx = RequestContext(request_id="r", route="/v1/chat/completions", model="bob@example.com", status=200)
    metrics.request_started()
    metrics.request_finished(ctx, "/v1/chat/completions")
    samples = snapshot(metrics)
    assert samples[key("guardserve_requests_total", route="/v1/chat/completions", model="none", status="200")] == 1
    assert samples["guardserve_inflight_requests{}"] == 0


# --- multiprocess mode ---------------------------------------------------------------------------------------------


def test_prepare_makes_a_fresh_directory_or_wipes_the_given_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(multiproc.ENV, "")  # so that monkeypatch restores the environment prepare() changes
    monkeypatch.delenv(multiproc.ENV)
    made, created = multiproc.prepare()
    try:
        assert created and made.is_dir() and os.environ[multiproc.ENV] == str(made)
    finally:
        multiproc.remove(made)
    assert not made.exists()
    given = tmp_path / "prom"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"old run")
    (given / "notes.txt").write_text("kept")
    monkeypatch.setenv(multiproc.ENV, str(given))
    path, created = multiproc.prepare()
    assert path == given and not created
    assert sorted(p.name for p in given.iterdir()) == ["notes.txt"]


def test_multiprocess_values_of_several_processes_add_up(tmp_path: Path) -> None:
    """Three processes record into one directory; a fourth reads the sum, and a dead one's live gauge is dropped."""
    code = """
import sys
from guardserve.app.observability.metrics import GatewayMetrics
m = GatewayMetrics()
assert m.multiprocess_dir is not None
m.set_models(["tiny"])
m.guard_action("pii", "input", "block")
m.engine_health("tiny", sys.argv[1] == "up")
m.request_started()  # in flight when the process dies: its live gauge must not count
"""
    env = {**os.environ, multiproc.ENV: str(tmp_path)}
    for health in ("up", "up", "down"):
        subprocess.run([sys.executable, "-c", code, health], env=env, check=True, timeout=SUBPROCESS_S)
    read = """
from guardserve.app.observability.metrics import GatewayMetrics
print(GatewayMetrics().exposition()[0].decode())
"""
    out = subprocess.run(
        [sys.executable, "-c", read], env=env, check=True, capture_output=True, text=True, timeout=SUBPROCESS_S
    )
    samples = parse(out.stdout)
    assert samples[key("guardserve_guard_actions_total", guard="pii", stage="input", action="block")] == 3
    assert samples["guardserve_inflight_requests{}"] == 0  # the dead processes' in-flight requests are dropped
    assert key("guardserve_engine_up", engine="tiny") not in samples  # so is their engine health
    live_pids = {p.stem.rsplit("_", 1)[1] for p in tmp_path.glob("gauge_live*.db")}
    assert len(live_pids) == 1  # only the reader's own live gauges are left
