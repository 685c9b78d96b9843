"""loadtests/soak.py's checks: a pool that fills and stays passes, a descriptor leak does not."""

from __future__ import annotations

from pathlib import Path

from tests.support.scripts import load_script

summarize = load_script(Path(__file__).resolve().parents[2] / "loadtests" / "soak.py").summarize


def _samples(fds: list[int], rss: float = 300.0) -> list[dict[str, float]]:
    return [{"t": 10.0 * n, "rss_mb": rss, "fds": f} for n, f in enumerate(fds)]


def test_a_pool_that_fills_after_warm_up_and_stays_is_no_growth() -> None:
    filling = [50, 50, 55, 60, 62, 62, 61, 62, 62, 62, 62, 62]  # warm-up ends at t=10: 50, then the pool peaks
    checks = summarize(_samples(filling), 10.0, 0, 0)["checks"]
    assert all(checks.values()), checks


def test_descriptors_that_keep_climbing_are_growth() -> None:
    leaking = [50 + 2 * n for n in range(12)]
    summary = summarize(_samples(leaking), 10.0, 0, 0)
    assert not summary["checks"]["no fd growth (second half's peak <= first half's + 2 pooled connections)"]
    assert summary["fds_peak_second_half"] > summary["fds_peak_first_half"]


def test_rss_growth_and_5xx_fail_their_checks() -> None:
    samples = _samples([50] * 6)
    samples[-1]["rss_mb"] = 340.0  # +13 % after warm-up
    checks = summarize(samples, 0.0, 3, 0)["checks"]
    assert not checks["no 5xx"] and not checks["RSS growth after warm-up <= 10 %"]
