"""Real servers for tests: the gateway under uvicorn in a thread, and `guardserve engine` as a subprocess."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from guardserve.app.cli import UVICORN_OPTIONS
from tests.support.processes import ServerProcess, clean_env, free_port, spawn, wait_ready
from tests.support.waits import STARTUP_S, wait_until

__all__ = ["EngineProcess", "LiveServer", "free_port", "serve_in_thread", "start_engine_process", "wait_until"]


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


def serve_in_thread(app: FastAPI, timeout: float = STARTUP_S) -> LiveServer:
    """Start uvicorn on a free loopback port (port 0) and wait until the lifespan has finished starting."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **UVICORN_OPTIONS)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError(f"uvicorn did not finish its lifespan start-up within {timeout} s")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return LiveServer(app, server, thread, port)


@dataclass
class EngineProcess(ServerProcess):
    """`guardserve engine`: the CPU engine alone behind the OpenAI API, a real upstream for the HTTP engine."""

    name: str = ""

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def ready(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/ready", timeout=5).json()  # type: ignore[no-any-return]

    def inflight(self) -> int:
        return int(self.ready()["models"][self.name]["inflight"])


def start_engine_process(
    checkpoint: Path, name: str, log: Path, timeout: float = STARTUP_S, port: int | None = None
) -> EngineProcess:
    """`guardserve engine` in its own process (on ``port``: e.g. the port of one that was killed)."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "guardserve.app.cli", "engine", "--checkpoint", str(checkpoint), "--name", name]
    server = spawn([*cmd, "--port", str(port)], clean_env(), log, port)
    engine = EngineProcess(server.process, port, log, name)
    wait_ready([engine], "/ready", timeout)
    return engine
