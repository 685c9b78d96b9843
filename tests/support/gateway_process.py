"""`guardserve serve` as a subprocess: the real CLI, uvicorn workers, JSON logs captured to a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import free_port


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lines(self) -> list[str]:
        return [line for line in self.log.read_text(encoding="utf-8").splitlines() if line.strip()]

    def records(self) -> list[dict[str, Any]]:
        """Every log line, parsed: fails on a line that is not one JSON object."""
        records = []
        for line in self.lines():
            record = json.loads(line)
            assert isinstance(record, dict), line
            records.append(record)
        return records

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_gateway_process(args: list[str], env: dict[str, str], log: Path, timeout: float = 90.0) -> GatewayProcess:
    """Run ``guardserve serve ARGS`` on a free port with ``env`` on top of a clean environment; wait for /health.
    Like the suite's in-process gateways, without API keys or rate limits unless ``env`` turns them on."""
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUARDSERVE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    base |= {"GUARDSERVE_AUTH__ENABLED": "false", "GUARDSERVE_LIMITS__ENABLED": "false"}
    cmd = [sys.executable, "-m", "app.cli", "serve", "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**base, **env})
    gateway = GatewayProcess(process, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"guardserve serve exited with {process.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{gateway.url}/health", timeout=1).status_code == 200:
                return gateway
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    gateway.stop()
    raise TimeoutError(f"guardserve serve did not answer /health: {log.read_text()[-3000:]}")
