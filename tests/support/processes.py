"""Servers in their own processes for tests: start on a free port, wait until they answer, stop cleanly."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process' environment without any GUARDSERVE_* setting (or a metrics directory), plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUARDSERVE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    return base | dict(extra or {})


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answers(self, path: str) -> bool:
        try:
            return httpx.get(self.url + path, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def spawn(cmd: list[str], env: Mapping[str, str], log: Path, port: int) -> ServerProcess:
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(env))
    return ServerProcess(process, port, log)


def wait_ready(servers: Iterable[ServerProcess], path: str, timeout: float) -> None:
    """Until every server answers 200 on ``path``; a server that exits or a timeout stops them all and raises."""
    servers = list(servers)
    deadline = time.monotonic() + timeout
    for server in servers:
        while not server.answers(path):
            exited = server.process.poll() is not None
            if exited or time.monotonic() > deadline:
                for other in servers:
                    other.stop()
                what = f"exited with {server.process.returncode}" if exited else f"did not answer {path}"
                command = " ".join(str(a) for a in server.process.args[:4])  # type: ignore[index]
                raise RuntimeError(f"{command} {what} within {timeout} s: {server.log.read_text()[-3000:]}")
            time.sleep(0.1)
