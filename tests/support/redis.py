"""Redis for tests: the shared server on 127.0.0.1:6379 (every key under a random prefix, deleted afterwards),
and test-owned ``redis-server`` processes on free ports for tests that kill or restart Redis."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support.servers import free_port

SHARED_URL = "redis://127.0.0.1:6379/0"


def shared_redis_available() -> bool:
    try:
        return bool(redis.Redis.from_url(SHARED_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def new_prefix() -> str:
    return f"gs-test-{uuid.uuid4().hex[:10]}:"


def delete_prefix(url: str, prefix: str) -> None:
    """Delete our keys only (SCAN + DEL of the prefix; never FLUSH a shared server)."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        batch = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(batch), 500):
            client.delete(*batch[i : i + 500])
    finally:
        client.close()


@dataclass
class RedisProcess:
    """A test-owned redis-server. With ``aof`` its data survives kill -9 and restart (as in production)."""

    directory: Path
    port: int = field(default_factory=free_port)
    aof: bool = True
    fsync: str = "always"  # appendfsync: "always", or "everysec" as in production (docs: what it risks)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 60.0) -> None:
        cmd = [shutil.which("redis-server") or "redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--dir", str(self.directory), "--daemonize", "no"]
        cmd += ["--appendonly", "yes", "--appendfsync", self.fsync] if self.aof else ["--appendonly", "no"]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=self.port, socket_timeout=0.5).ping():
                    return
            time.sleep(0.02)
        raise TimeoutError(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)
