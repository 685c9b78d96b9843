"""What observability costs per request: the gateway app driven in-process (no sockets), observability on and off.

    .venv/bin/python loadtests/bench_metrics_overhead.py [--requests 5000]

Each mode sends the same sequential `GET /v1/models` requests through the full ASGI stack (middleware included)
with httpx's ASGI transport and reports the mean time per request (best of interleaved rounds, as this machine
is shared) and the difference to metrics off. Modes:
metrics off; metrics on (single process); metrics on + one JSON access line per request (to a discarding
handler); metrics on in multiprocess mode (a child process with PROMETHEUS_MULTIPROC_DIR, values in mmap files).
Then the recording calls alone, which is steadier on a busy machine than the whole stack.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def _measure(metrics: bool, access_log: bool, requests: int) -> float:
    import httpx

    from guardserve.app.main import create_app
    from guardserve.app.observability.logs import JSONFormatter
    from guardserve.app.settings import ObservabilitySettings, Settings

    logger = logging.getLogger("guardserve.access")
    logger.handlers.clear()
    logger.propagate = False
    if access_log:
        handler = logging.StreamHandler(io.StringIO())
        handler.setFormatter(JSONFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    else:
        logger.setLevel(logging.WARNING)
    app = create_app(Settings(observability=ObservabilitySettings(metrics_enabled=metrics)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(200):  # warm up
            await client.get("/v1/models")
        started = time.perf_counter()
        for _ in range(requests):
            response = await client.get("/v1/models")
            assert response.status_code == 200
        return (time.perf_counter() - started) / requests


def _record_only(requests: int) -> float:
    """The metrics work of one finished request alone: request_started + request_finished (streamed, 16 tokens)."""
    from guardserve.app.context import RequestContext
    from guardserve.app.observability.metrics import GatewayMetrics

    metrics = GatewayMetrics()
    metrics.set_models(["m"])
    ctx = RequestContext(request_id="r", route="/v1/chat/completions", model="m", status=200)
    ctx.prompt_tokens, ctx.completion_tokens = 30, 16
    ctx.first_token_at, ctx.last_token_at = ctx.started + 0.05, ctx.started + 0.2
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(requests):
            metrics.request_started()
            metrics.request_finished(ctx, "/v1/chat/completions")
        best = min(best, (time.perf_counter() - started) / requests)
    return best


def _child(args: argparse.Namespace) -> None:
    if args.record_only:
        print(json.dumps(_record_only(args.requests)))
        return
    print(json.dumps(asyncio.run(_measure(args.metrics == "on", args.access_log, args.requests))))


def _run_child(
    requests: int, metrics: bool, access_log: bool, multiproc_dir: str | None, record_only: bool = False
) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if multiproc_dir:
        env["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir
    cmd = [sys.executable, __file__, "--child", "--requests", str(requests), "--metrics", "on" if metrics else "off"]
    if access_log:
        cmd.append("--access-log")
    if record_only:
        cmd.append("--record-only")
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="runs of every mode, interleaved; the best counts")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--metrics", choices=["on", "off"], default="on", help=argparse.SUPPRESS)
    parser.add_argument("--access-log", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--record-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as directory:
        modes = [
            ("metrics off", False, False, None),
            ("metrics on", True, False, None),
            ("metrics on + JSON access line", True, True, None),
            ("metrics on, multiprocess mode", True, False, directory),
        ]
        best = {name: float("inf") for name, *_ in modes}
        for _ in range(args.rounds):
            for name, metrics, access_log, multiproc_dir in modes:
                best[name] = min(best[name], _run_child(args.requests, metrics, access_log, multiproc_dir))
        recording = {
            "single process": _run_child(args.requests * 4, True, False, None, record_only=True),
            "multiprocess mode": _run_child(args.requests * 4, True, False, directory, record_only=True),
        }
    results = list(best.items())
    base = results[0][1]
    print(f"{args.requests} sequential GET /v1/models through the ASGI stack (in-process, no sockets), ", end="")
    print(f"best of {args.rounds} interleaved rounds\n")
    print(f"| {'mode':<32} | {'µs/request':>10} | {'vs off':>8} |")
    print(f"|{'-' * 34}|{'-' * 12}|{'-' * 10}|")
    for name, seconds in results:
        print(f"| {name:<32} | {seconds * 1e6:>10.1f} | {(seconds - base) * 1e6:>+7.1f}µ |")
    print("\nThe metrics work of one finished streamed request alone (request_started + request_finished):\n")
    for name, seconds in recording.items():
        print(f"  {name:<18} {seconds * 1e6:6.1f} µs")


if __name__ == "__main__":
    main()
