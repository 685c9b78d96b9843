"""Sentinel and Cluster URLs against real servers: a single-node Redis Cluster (every admission's keys must hash
to one slot, or Redis refuses the script) and a Sentinel watching a test-owned master."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from guardserve.app.auth.service import KeyService
from guardserve.app.auth.store import RedisKeyStore
from guardserve.app.limits.model import Ask, Scope
from guardserve.app.limits.redis_limiter import RedisLimiter
from guardserve.app.limits.settings import Limits
from guardserve.app.store.backend import RedisBackend
from guardserve.app.store.connection import connect
from guardserve.app.store.settings import RedisSettings
from tests.support.redis import RedisProcess
from tests.support.servers import free_port
from tests.support.waits import SETTLE_S

pytestmark = pytest.mark.usefixtures("needs_redis_server")


def wait_for(predicate: object, timeout: float = SETTLE_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"redis server not ready within {timeout} s")


def cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is a valid, free port too."""
    while True:
        port = free_port()
        if port + 10_000 <= 65_535:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10_000))
                except OSError:
                    continue
            return port


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[int]:
    port = cluster_port()
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    cmd += ["--cluster-enabled", "yes", "--cluster-config-file", str(tmp_path / "nodes.conf"), "--dir", str(tmp_path)]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_timeout=1)
        wait_for(client.ping)
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
        wait_for(lambda: b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO"))
        yield port
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def sentinel(own_redis: RedisProcess, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\nsentinel monitor gsmaster 127.0.0.1 {own_redis.port} 1\n")
    process = subprocess.Popen(["redis-server", str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_timeout=1)
        wait_for(lambda: client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "gsmaster"))
        yield port
    finally:
        process.kill()
        process.wait()


async def exercise(url: str) -> None:
    """Keys and a multi-scope admission (key + tenant, every limit kind) through this URL."""
    settings = RedisSettings(url=url, timeout_ms=2000, connect_timeout_ms=2000)  # type: ignore[arg-type]
    backend = RedisBackend(connect(settings), settings)
    try:
        service = KeyService(RedisKeyStore(backend), "p" * 40)
        key, record = await service.create("acme")
        assert (await service.authenticate(f"Bearer {key}")).id == record.id
        assert [r.id for r in await service.list()] == [record.id]
        limiter = RedisLimiter(backend, lease_seconds=30)
        limits = Limits(requests_per_minute=2, tokens_per_minute=1000, concurrent=5, tokens_per_day=10_000)
        scopes = (Scope("key", record.id, limits), Scope("tenant", "acme", limits))
        decisions = [await limiter.acquire(Ask(uuid.uuid4().hex, "acme", scopes, 10)) for _ in range(3)]
        assert [d.allowed for d in decisions] == [True, True, False]
        assert decisions[0].lease is not None
        await limiter.release(decisions[0].lease, 3)
    finally:
        await backend.aclose()


async def test_cluster_url(cluster: int) -> None:
    await exercise(f"redis+cluster://127.0.0.1:{cluster}")


async def test_sentinel_url(sentinel: int) -> None:
    await exercise(f"redis+sentinel://127.0.0.1:{sentinel}/gsmaster/0")
