"""Start-up rules: production refuses dev secrets and a missing Redis; dev mode without Redis works and says so."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from guardserve.app.access import ConfigurationError
from guardserve.app.auth import keys
from guardserve.app.auth.settings import DEV_PEPPER, AuthSettings
from guardserve.app.limits.settings import Limits, LimitSettings
from guardserve.app.main import create_app
from guardserve.app.settings import GuardrailSettings, Settings
from guardserve.app.store.settings import RedisSettings
from guardserve.models.registry import ModelEntry
from tests.support.redis import RedisProcess, new_prefix
from tests.support.servers import free_port, serve_in_thread
from tests.support.waits import SUBPROCESS_S

REMOTE = ModelEntry(name="remote", engine="openai", url="http://127.0.0.1:9/v1", context_length=4096)
GOOD_PEPPER = "p" * 48


def prod(**auth: object) -> Settings:
    fields = {"enabled": True, "pepper": GOOD_PEPPER, "admin_key": keys.generate()[1], **auth}
    return Settings(
        mode="prod",
        models=[REMOTE],
        guardrails=GuardrailSettings(enabled=False),
        auth=AuthSettings(**fields),  # type: ignore[arg-type]
        limits=LimitSettings(enabled=True),
        redis=RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0"),  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("auth", "complaint"),
    [
        ({"pepper": None}, "PEPPER"),
        ({"pepper": DEV_PEPPER}, "PEPPER"),
        ({"pepper": "short"}, "PEPPER"),
        ({"admin_key": None}, "ADMIN_KEY"),
        ({"admin_key": "gs-password"}, "ADMIN_KEY"),
        ({"enabled": False}, "auth.enabled"),
    ],
)
def test_production_refuses_dev_or_missing_secrets(auth: dict[str, object], complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        create_app(prod(**auth))


def test_production_requires_redis() -> None:
    settings = prod()
    settings.redis.url = None
    with pytest.raises(ConfigurationError, match="REDIS__URL"):
        create_app(settings)
    unreachable = prod()  # a URL nobody listens on: refused at start-up, not at the first request
    with pytest.raises(ConfigurationError, match="unreachable"), TestClient(create_app(unreachable)):
        pass


def test_secrets_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text(GOOD_PEPPER + "\n")
    settings = AuthSettings(pepper_file=tmp_path / "pepper")
    assert settings.pepper_value() == GOOD_PEPPER
    with pytest.raises(ValueError, match="cannot read"):
        AuthSettings(admin_key_file=tmp_path / "missing").admin_key_value()


def test_serve_in_prod_without_secrets_exits_with_the_reason() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDSERVE_")} | {
        "GUARDSERVE_MODE": "prod",
        "GUARDSERVE_GUARDRAILS__ENABLED": "false",
        "GUARDSERVE_PORT": str(free_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "guardserve.app.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_S,
    )
    assert result.returncode != 0 and "refusing to start in production mode" in result.stderr


def test_dev_mode_without_redis_prints_a_working_key(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = Settings(
        models=[REMOTE],
        guardrails=GuardrailSettings(enabled=False),
        auth=AuthSettings(enabled=True),
        limits=LimitSettings(enabled=True, key_defaults=Limits(requests_per_minute=2)),
    )
    server = serve_in_thread(create_app(settings))
    try:
        printed = capsys.readouterr().err
        match = re.search(r"(gs-[0-9a-f]{12}-[A-Za-z0-9_-]+)", printed)
        assert match, printed
        headers = {"Authorization": f"Bearer {match.group(1)}"}
        assert httpx.get(f"{server.v1}/models", headers=headers).status_code == 200
        assert httpx.get(f"{server.v1}/models").status_code == 401
        assert any("DEV MODE" in r.getMessage() and "memory" in r.getMessage() for r in caplog.records)
        body = {"model": "remote", "prompt": "x", "max_tokens": 1}  # limits work in memory too (upstream is dead)
        statuses = [httpx.post(f"{server.v1}/completions", json=body, headers=headers).status_code for _ in range(3)]
        assert statuses[2] == 429 and 429 not in statuses[:2]
    finally:
        server.stop()


def test_limits_and_redis_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDSERVE_LIMITS__TENANTS", '{"acme": {"requests_per_minute": 7}}')
    monkeypatch.setenv("GUARDSERVE_LIMITS__FAILURE_MODE", "fail_closed")
    monkeypatch.setenv("GUARDSERVE_REDIS__URL", "redis+sentinel://s1:26379,s2:26379/mymaster/0")
    settings = Settings()
    assert settings.limits.tenant_limits("acme").requests_per_minute == 7
    assert settings.limits.tenant_limits("other").unlimited
    assert settings.limits.failure_mode == "fail_closed"
    assert "mymaster" not in repr(settings)  # the URL (it may hold a password) is a secret


def _prod_on(url: str, **redis: object) -> Settings:
    settings = prod()
    settings.redis = RedisSettings(url=url, prefix=new_prefix(), **redis)  # type: ignore[arg-type]
    return settings


def test_production_refuses_a_redis_that_persists_nothing(tmp_path: Path, needs_redis_server: None) -> None:
    """API keys live in Redis: without AOF or snapshots a Redis restart turns every key into a 401."""
    volatile = RedisProcess(tmp_path, aof=False)
    volatile.start()
    try:
        refused = create_app(_prod_on(volatile.url))
        with pytest.raises(ConfigurationError, match="persists nothing"), TestClient(refused):
            pass
        with TestClient(create_app(_prod_on(volatile.url, require_persistence=False))) as client:  # opted out: warns
            assert client.get("/health").status_code == 200
    finally:
        volatile.kill()


def test_production_starts_on_a_redis_with_aof(tmp_path: Path, needs_redis_server: None) -> None:
    durable = RedisProcess(tmp_path)
    durable.start()
    try:
        with TestClient(create_app(_prod_on(durable.url))) as client:
            assert client.get("/health").status_code == 200
    finally:
        durable.kill()
