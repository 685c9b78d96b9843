"""Gateways with API keys and rate limits on (the rest of the suite runs them off)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from guardserve.app.auth import keys
from guardserve.app.auth.settings import AuthSettings
from guardserve.app.feedback.settings import FeedbackSettings
from guardserve.app.limits.settings import Limits, LimitSettings
from guardserve.app.main import create_app
from guardserve.app.settings import GuardrailSettings, Settings
from guardserve.app.store.settings import RedisSettings
from guardserve.models.registry import ModelEntry
from tests.support.fake_upstream import FakeUpstream
from tests.support.processes import ServerProcess, clean_env, free_port, spawn, wait_ready
from tests.support.redis import delete_prefix, new_prefix
from tests.support.servers import LiveServer, serve_in_thread
from tests.support.waits import STARTUP_S

PEPPER = "test-pepper-" + "x" * 32
ADMIN_KEY = keys.generate()[1]


def secure_settings(
    models: list[ModelEntry],
    redis_url: str | None,
    prefix: str = "gs:",
    key_defaults: Limits | None = None,
    guardrails: GuardrailSettings | None = None,
    feedback: FeedbackSettings | None = None,
    **limits: Any,
) -> Settings:
    return Settings(
        models=models,
        guardrails=guardrails or GuardrailSettings(enabled=False),  # off unless a test is about them
        auth=AuthSettings(enabled=True, pepper=PEPPER, admin_key=ADMIN_KEY, dev_key=False),  # type: ignore[arg-type]
        limits=LimitSettings(enabled=True, key_defaults=key_defaults or Limits(), **limits),
        redis=RedisSettings(url=redis_url, prefix=prefix, timeout_ms=2000),  # type: ignore[arg-type]
        feedback=feedback or FeedbackSettings(),
    )


@contextmanager
def secure_gateway(
    checkpoint: Path,
    redis_url: str,
    guardrails: GuardrailSettings | None = None,
    feedback: FeedbackSettings | None = None,
    **limits: Any,
) -> Iterator[tuple[LiveServer, str]]:
    """The tiny CPU model behind keys and limits in Redis (under a fresh prefix, deleted afterwards)."""
    prefix = new_prefix()
    entry = ModelEntry(name="tiny", engine="cpu", checkpoint=checkpoint)
    settings = secure_settings([entry], redis_url, prefix, guardrails=guardrails, feedback=feedback, **limits)
    server = serve_in_thread(create_app(settings))
    try:
        yield server, prefix
    finally:
        server.stop()
        delete_prefix(redis_url, prefix)


@contextmanager
def fast_gateway(redis_url: str | None) -> Iterator[LiveServer]:
    """Model "fast" on the fast fake upstream behind keys and limits (in Redis under a fresh prefix, deleted
    afterwards; ``None``: in process memory): the gateway's own admission is what is under test."""
    upstream = serve_in_thread(FakeUpstream("fast"))  # type: ignore[arg-type]
    entry = ModelEntry(name="fast", engine="openai", url=upstream.v1, upstream_model="fast", context_length=4096)
    prefix = new_prefix()
    server = serve_in_thread(create_app(secure_settings([entry], redis_url, prefix)))
    try:
        yield server
    finally:
        server.stop()
        upstream.stop()
        if redis_url:
            delete_prefix(redis_url, prefix)


def admin(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)


def create_key(server: LiveServer, tenant: str = "acme", **fields: Any) -> dict[str, Any]:
    with admin(server) as client:
        response = client.post("/admin/keys", json={"tenant": tenant, **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def start_gateways(count: int, env: dict[str, str], logs: Path, timeout: float = STARTUP_S) -> list[ServerProcess]:
    """``count`` gateway processes (uvicorn, the app factory, settings from ``env``) on free ports, ready."""
    gateways = []
    for i in range(count):
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "guardserve.app.main:create_app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
        ]
        cmd += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
        gateways.append(spawn(cmd, clean_env(env), logs / f"gateway-{i}.log", port))
    wait_ready(gateways, "/health", timeout)
    return gateways


async def raw_post(port: int, path: str, body: bytes, key: str) -> int:
    """One HTTP/1.1 POST on its own connection, as cheaply as possible (a load generator on 2 cores); the status.
    Callers bound the time with ``asyncio.timeout``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()
        return int(status_line.split()[1])
    finally:
        writer.close()
