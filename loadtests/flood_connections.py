"""Idle-connection flood against a real `guardserve serve` (default connection settings): how many sockets it holds,
how many it refuses, and how fast /health answers meanwhile.

    python loadtests/flood_connections.py --sockets 15000 --ips 60

Sockets come from 127.0.0.2 … (``--ips`` addresses, round robin); the probe from 127.0.0.1. Needs a file-descriptor
limit above ``--sockets`` for this process (``ulimit -n``). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sockets", type=int, default=15_000)
    parser.add_argument("--ips", type=int, default=60)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = free_port()
    where = Path(tempfile.mkdtemp())
    registry = where / "registry.yaml"
    registry.write_text(
        f"models:\n  m:\n    engine: openai\n    url: http://127.0.0.1:{free_port()}/v1\n"
        "    upstream_model: m\n    context_length: 512\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDSERVE_")}
    env |= {"GUARDSERVE_AUTH__ENABLED": "false", "GUARDSERVE_LIMITS__ENABLED": "false"}
    cmd = [sys.executable, "-m", "guardserve.app.cli", "serve", "--port", str(port), "--registry", str(registry)]
    server = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/health"
    try:
        for _ in range(600):
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        socks, failed_connects = [], 0
        start = time.monotonic()
        for n in range(args.sockets):
            sock = socket.socket()
            sock.bind((f"127.0.0.{2 + n % args.ips}", 0))
            try:
                sock.connect(("127.0.0.1", port))
                socks.append(sock)
            except OSError:
                failed_connects += 1
                sock.close()
        opened_s = time.monotonic() - start
        probes = []
        for _ in range(20):
            t = time.monotonic()
            status = httpx.get(url, timeout=30).status_code
            probes.append((time.monotonic() - t) * 1000 if status == 200 else float("inf"))
        time.sleep(1)
        poller = select.poll()
        for sock in socks:
            poller.register(sock, select.POLLIN)
        ended = len(poller.poll(0))  # readable: the server closed or reset it
        print(
            json.dumps(
                {
                    "sockets": args.sockets,
                    "ips": args.ips,
                    "connect_failed": failed_connects,
                    "open_s": round(opened_s, 1),
                    "ended_by_server_within_1s": ended,
                    "held": len(socks) - ended,
                    "health_ms_p50": round(sorted(probes)[len(probes) // 2], 1),
                    "health_ms_max": round(max(probes), 1),
                }
            )
        )
        for sock in socks:
            sock.close()
    finally:
        server.terminate()
        server.wait(30)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


if __name__ == "__main__":
    main()
