"""`guardserve serve` as a subprocess: the real CLI, uvicorn workers, JSON logs captured to a file."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.processes import ServerProcess, clean_env, free_port, spawn, wait_ready
from tests.support.waits import STARTUP_S


@dataclass
class GatewayProcess(ServerProcess):
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


def start_gateway_process(
    args: list[str], env: dict[str, str], log: Path, timeout: float = STARTUP_S
) -> GatewayProcess:
    """Run ``guardserve serve ARGS`` on a free port with ``env`` on top of a clean environment; wait for /health.
    Like the suite's in-process gateways, without API keys or rate limits unless ``env`` turns them on."""
    port = free_port()
    base = clean_env({"GUARDSERVE_AUTH__ENABLED": "false", "GUARDSERVE_LIMITS__ENABLED": "false"})
    cmd = [sys.executable, "-m", "guardserve.app.cli", "serve", "--port", str(port), *args]
    server = spawn(cmd, base | env, log, port)
    gateway = GatewayProcess(server.process, port, log)
    wait_ready([gateway], "/health", timeout)
    return gateway


def start_with_registry(where: Path, registry: str, env: dict[str, str]) -> GatewayProcess:
    """``guardserve serve --registry`` with ``registry`` (YAML text) written to ``where``/registry.yaml; logs
    to ``where``/gateway.log."""
    path = where / "registry.yaml"
    path.write_text(registry, encoding="utf-8")
    return start_gateway_process(["--registry", str(path)], env, where / "gateway.log")
