"""What the gateway shows to anyone who can reach it: docs only where enabled, security headers, CORS closed
unless origins are configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from guardserve.app.main import create_app
from guardserve.app.settings import Settings
from guardserve.models.registry import ModelEntry
from tests.conftest import NO_GUARDS, TINY
from tests.support.servers import LiveServer, serve_in_thread

ORIGIN = "https://playground.example.org"


@pytest.fixture(scope="module")
def closed(tiny_checkpoint: Path) -> Iterator[LiveServer]:
    entry = ModelEntry(name=TINY, engine="cpu", checkpoint=tiny_checkpoint)
    server = serve_in_thread(create_app(Settings(models=[entry], guardrails=NO_GUARDS, docs=False)))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def open_to_origin(tiny_checkpoint: Path) -> Iterator[LiveServer]:
    entry = ModelEntry(name=TINY, engine="cpu", checkpoint=tiny_checkpoint)
    server = serve_in_thread(create_app(Settings(models=[entry], guardrails=NO_GUARDS, cors_origins=[ORIGIN])))
    yield server
    server.stop()


def test_docs_are_served_in_dev_mode_only_unless_set() -> None:
    assert Settings().serves_docs and not Settings(mode="prod").serves_docs
    assert Settings(mode="prod", docs=True).serves_docs and not Settings(docs=False).serves_docs


def test_docs_off_means_no_schema_and_no_views(closed: LiveServer) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        response = httpx.get(closed.url + path, timeout=30)
        assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_url"


def test_security_headers_on_api_answers_and_errors(closed: LiveServer) -> None:
    for response in (
        httpx.get(f"{closed.v1}/models", timeout=30),
        httpx.post(f"{closed.v1}/chat/completions", json={"model": "nope"}, timeout=30),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert "server" not in response.headers  # no banner (guardserve.app.cli.UVICORN_OPTIONS)
    body = {"model": TINY, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "stream": True}
    with httpx.stream("POST", f"{closed.v1}/chat/completions", json=body, timeout=60) as stream:
        assert stream.headers["cache-control"] == "no-cache"  # the stream's own, not overridden
        assert stream.headers["x-content-type-options"] == "nosniff"


def test_cors_is_closed_by_default(closed: LiveServer) -> None:
    preflight = httpx.options(
        f"{closed.v1}/chat/completions",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        timeout=30,
    )
    assert "access-control-allow-origin" not in preflight.headers
    plain = httpx.get(f"{closed.v1}/models", headers={"Origin": ORIGIN}, timeout=30)
    assert "access-control-allow-origin" not in plain.headers


def test_cors_allows_only_the_configured_origins(open_to_origin: LiveServer) -> None:
    def preflight(origin: str) -> httpx.Response:
        return httpx.options(
            f"{open_to_origin.v1}/chat/completions",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
            timeout=30,
        )

    allowed = preflight(ORIGIN)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in preflight("https://evil.example.com").headers
    answer = httpx.get(f"{open_to_origin.v1}/models", headers={"Origin": ORIGIN}, timeout=30)
    assert answer.headers["access-control-allow-origin"] == ORIGIN
