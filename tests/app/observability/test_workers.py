"""Several uvicorn workers (`guardserve serve --workers 2`): requests land on both, and /metrics shows the sum.

The served model is an OpenAI-HTTP engine whose upstream is down, so the workers start without torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.support.gateway_process import GatewayProcess, start_gateway_process
from tests.support.metrics import Samples, key, scrape, settled
from tests.support.servers import free_port, wait_until

REMOTE = "remote"
MODELS_ROUTE = key("guardserve_requests_total", route="/v1/models", model="none", status="200")


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    path.write_text(
        f"models:\n  {REMOTE}:\n    engine: openai\n    url: http://127.0.0.1:{free_port()}/v1\n"
        "    context_length: 2048\n"
    )
    return path


def requests_per_worker(directory: Path) -> dict[int, float]:
    """Each worker's own count of /v1/models requests, read from its file in the multiprocess directory."""
    counts = {}
    for file in directory.glob("counter_*.db"):
        pid = int(file.stem.split("_")[1])
        for metric in MultiProcessCollector.merge([str(file)]):  # type: ignore[no-untyped-call]
            for sample in metric.samples:
                if sample.name == "guardserve_requests_total" and sample.labels.get("route") == "/v1/models":
                    counts[pid] = counts.get(pid, 0.0) + sample.value
    return counts


def hit_both_workers(url: str, directory: Path, limit: int = 400) -> int:
    """Send batches of concurrent one-connection requests until both workers have answered some; return how many."""
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        while sent < limit:
            statuses = list(
                pool.map(lambda _: httpx.get(url, headers={"Connection": "close"}, timeout=10).status_code, range(16))
            )
            assert statuses == [200] * 16
            sent += 16
            counts = requests_per_worker(directory)
            if len([c for c in counts.values() if c > 0]) >= 2 and sum(counts.values()) == sent:
                return sent
    raise AssertionError(f"after {sent} requests the workers' counts are {requests_per_worker(directory)}")


def check_sums(metrics_url: str, sent: int, scrapes: int = 6) -> Samples:
    """Several scrapes (each may land on either worker) all show the totals of both workers, once the last
    requests' bookkeeping is done (a worker records a request just after its client has the answer)."""
    samples: Samples = settled(metrics_url)
    for _ in range(scrapes):
        # In flight is a gauge summed over the workers' files: on a loaded machine one scrape has caught a request
        # of the gateway's own between its two files' updates (1 after a 0). Totals must hold on every scrape.
        samples = settled(metrics_url)
        assert samples[MODELS_ROUTE] == sent
        assert samples[key("guardserve_request_duration_seconds_count", route="/v1/models", model="none")] == sent
        assert samples[key("guardserve_requests_total", route="/v1/chat/completions", model=REMOTE, status="503")] == 1
        assert samples[key("guardserve_engine_errors_total", engine=REMOTE, kind="unavailable")] == 1
        assert samples[key("guardserve_engine_up", engine=REMOTE)] == 0
        assert samples["guardserve_inflight_requests{}"] == 0
    return samples


def engine_failure(gateway: GatewayProcess) -> None:
    body = {"model": REMOTE, "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30).status_code == 503


@pytest.fixture
def two_workers(tmp_path: Path, registry: Path) -> Iterator[tuple[GatewayProcess, Path]]:
    directory = tmp_path / "prom"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "GUARDSERVE_OBSERVABILITY__ENGINE_HEALTH_INTERVAL": "0.2"}
    gateway = start_gateway_process(["--workers", "2", "--registry", str(registry)], env, tmp_path / "gateway.log")
    yield gateway, directory
    gateway.stop()


def test_metrics_of_two_workers_add_up(two_workers: tuple[GatewayProcess, Path]) -> None:
    gateway, directory = two_workers
    sent = hit_both_workers(f"{gateway.url}/v1/models", directory)
    engine_failure(gateway)
    wait_until(lambda: scrape(f"{gateway.url}/metrics").get("guardserve_inflight_requests{}") == 0, 5)
    check_sums(f"{gateway.url}/metrics", sent)
    assert len({pid for pid, count in requests_per_worker(directory).items() if count}) == 2

    # One JSON access line per request, from both workers, each with its request id.
    gateway.stop()
    access = [r for r in gateway.records() if r["logger"] == "guardserve.access" and r["route"] == "/v1/models"]
    assert len(access) == sent
    assert len({r["request_id"] for r in access}) == sent
    assert not list(directory.glob("gauge_live*"))  # workers that stopped dropped their live gauges


def test_separate_metrics_port_serves_all_workers(tmp_path: Path, registry: Path) -> None:
    metrics_port = free_port()
    env = {
        "GUARDSERVE_OBSERVABILITY__METRICS_PORT": str(metrics_port),
        "GUARDSERVE_OBSERVABILITY__ENGINE_HEALTH_INTERVAL": "0.2",
    }
    gateway = start_gateway_process(["--workers", "2", "--registry", str(registry)], env, tmp_path / "gateway.log")
    try:
        # No PROMETHEUS_MULTIPROC_DIR given: the CLI made a fresh one and says where.
        found = [re.search(r"collected in (\S+)", r["message"]) for r in gateway.records()]
        directory = Path(next(m.group(1) for m in found if m))
        assert directory.is_dir()
        sent = hit_both_workers(f"{gateway.url}/v1/models", directory)
        engine_failure(gateway)
        assert httpx.get(f"{gateway.url}/metrics", timeout=10).status_code == 404  # not on the API port
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_until(lambda: scrape(metrics_url).get("guardserve_inflight_requests{}") == 0, 5)
        samples = check_sums(metrics_url, sent)
        assert samples[key("guardserve_requests_total", route="unmatched", model="none", status="404")] == 1
    finally:
        gateway.stop()
    assert not directory.exists()  # removed when the server stopped
