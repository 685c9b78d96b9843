"""Reading Prometheus exposition in tests: samples keyed ``name{label="value",...}`` (labels sorted)."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.waits import SETTLE_S

Samples = dict[str, float]


def key(name: str, **labels: str) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[key(sample.name, **sample.labels)] = sample.value
    return samples


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10, headers={"Connection": "close"})
    response.raise_for_status()
    return parse(response.text)


def settled(url: str, timeout: float = SETTLE_S) -> Samples:
    """Scrape once no request is in flight (finished requests are recorded before the gauge drops)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if samples.get("guardserve_inflight_requests{}") == 0:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"requests still in flight after {timeout} s")
        time.sleep(0.02)


def delta(before: Samples, after: Samples, prefix: str = "guardserve_") -> Samples:
    """What moved between two scrapes: counters, histogram counts and gauges (not bucket or sum samples)."""
    moved: Samples = {}
    for name in before.keys() | after.keys():
        if not name.startswith(prefix) or "_bucket{" in name or "_sum{" in name:
            continue
        change = after.get(name, 0.0) - before.get(name, 0.0)
        if change:
            moved[name] = change
    return moved
