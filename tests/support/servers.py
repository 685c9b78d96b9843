"""Real servers for tests: the gateway under uvicorn in a thread, and `guardserve engine` as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI


@dataclass
class LiveServer:
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def serve_in_thread(app: FastAPI, timeout: float = 60.0) -> LiveServer:
    """Start uvicorn on a free loopback port (port 0) and wait until the lifespan has finished starting."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return LiveServer(app, server, thread, port)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EngineProcess:
    process: subprocess.Popen[bytes]
    port: int
    name: str
    log: Path

    @property
    def v1(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def ready(self) -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{self.port}/ready", timeout=5).json()  # type: ignore[no-any-return]

    def inflight(self) -> int:
        return int(self.ready()["models"][self.name]["inflight"])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_engine_process(checkpoint: Path, name: str, log: Path, timeout: float = 90.0) -> EngineProcess:
    port = free_port()
    cmd = [sys.executable, "-m", "app.cli", "engine", "--checkpoint", str(checkpoint), "--name", name]
    cmd += ["--port", str(port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDSERVE_")}
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    engine = EngineProcess(process, port, name, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"guardserve engine exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return engine
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    engine.stop()
    raise TimeoutError(f"guardserve engine did not become ready: {log.read_text()[-2000:]}")


def wait_until(predicate: Any, timeout: float, interval: float = 0.01) -> float:
    """Poll until predicate() is true; return the seconds it took, or raise AssertionError."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
