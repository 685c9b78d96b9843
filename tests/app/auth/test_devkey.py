"""`guardserve serve` in dev mode: one admin key kept in a 0600 file and reused, and a banner once it is ready."""

from __future__ import annotations

import io
import os
import stat
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from guardserve.app.auth import keys
from guardserve.app.auth.devkey import load_or_create
from guardserve.app.auth.settings import AuthSettings
from guardserve.app.cli import announce_when_ready, base_url, dev_admin_key
from guardserve.app.main import create_app
from guardserve.app.settings import GuardrailSettings, Settings
from tests.support.processes import free_port
from tests.support.servers import serve_in_thread


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_key_is_created_private_then_reused(tmp_path: Path) -> None:
    path = tmp_path / ".guardserve" / "dev-admin-key"
    key, created = load_or_create(path)
    assert created and keys.key_id_of(key) and path.read_text().strip() == key
    assert mode_of(path) == 0o600 and mode_of(path.parent) == 0o700
    assert load_or_create(path) == (key, False)
    path.chmod(0o644)
    assert load_or_create(path) == (key, False) and mode_of(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["dev-admin-key"]  # no temporary file left behind


def test_a_malformed_file_gets_a_fresh_key(tmp_path: Path) -> None:
    path = tmp_path / "dev-admin-key"
    path.write_text("not a key\n")
    key, created = load_or_create(path)
    assert created and keys.key_id_of(key) and mode_of(path) == 0o600


def test_serve_exports_the_kept_key_for_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUARDSERVE_AUTH__ADMIN_KEY_FILE", raising=False)
    path = tmp_path / "kept-key"
    settings = Settings(auth=AuthSettings(dev_key_file=path))
    lines = dev_admin_key(settings)
    key = path.read_text().strip()
    assert f"    export OPENAI_API_KEY={key}" in lines and "created now" in lines[0]
    assert os.environ["GUARDSERVE_AUTH__ADMIN_KEY_FILE"] == str(path.resolve())
    assert Settings().auth.admin_key_value() == key  # what each worker reads
    again = dev_admin_key(Settings(auth=AuthSettings(dev_key_file=path)))
    assert f"    export OPENAI_API_KEY={key}" in again and "the same at every start" in again[0]


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_a_key_path_that_cannot_be_kept_falls_back_to_a_one_off_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.delenv("GUARDSERVE_AUTH__ADMIN_KEY_FILE", raising=False)
    path = tmp_path / "kept-key"
    if kind == "directory":
        path.mkdir()
    else:
        (tmp_path / "elsewhere").write_text("gs-" + "a" * 12 + "-" + "b" * 43 + "\n")
        path.symlink_to(tmp_path / "elsewhere")
    lines = dev_admin_key(Settings(auth=AuthSettings(dev_key_file=path)))
    assert "cannot keep the dev admin key" in lines[0] and "one-off key" in lines[0]
    assert "GUARDSERVE_AUTH__ADMIN_KEY_FILE" not in os.environ  # serve goes on; the app makes a key of its own


@pytest.mark.parametrize(
    "settings",
    [
        Settings(auth=AuthSettings(enabled=False)),
        Settings(auth=AuthSettings(dev_key=False)),
        Settings(auth=AuthSettings(admin_key="gs-" + "a" * 12 + "-" + "b" * 43)),
    ],
)
def test_no_kept_key_when_not_wanted(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUARDSERVE_AUTH__ADMIN_KEY_FILE", raising=False)
    path = tmp_path / "kept-key"
    settings = settings.model_copy(update={"auth": settings.auth.model_copy(update={"dev_key_file": path})})
    assert dev_admin_key(settings) == [] and not path.exists()
    assert "GUARDSERVE_AUTH__ADMIN_KEY_FILE" not in os.environ


def test_with_the_kept_key_no_other_key_is_created(tmp_path: Path) -> None:
    key, _ = load_or_create(tmp_path / "kept-key")
    settings = Settings(
        models=[],
        guardrails=GuardrailSettings(enabled=False),
        auth=AuthSettings(admin_key_file=tmp_path / "kept-key"),
    )
    with TestClient(create_app(settings)) as client:
        listed = client.get("/admin/keys", headers={"Authorization": f"Bearer {key}"})
        assert listed.status_code == 200 and listed.json()["data"] == []


def test_the_banner_comes_once_ready_and_ends_with_ready() -> None:
    quiet, stop = io.StringIO(), threading.Event()
    waiting = announce_when_ready(f"http://127.0.0.1:{free_port()}", ["x"], out=quiet, poll_s=0.05, stop=stop)
    server = serve_in_thread(create_app(Settings(models=[], guardrails=GuardrailSettings(enabled=False))))
    try:
        out = io.StringIO()
        lines = ["  admin API key:", "    export OPENAI_API_KEY=gs-test"]
        announce_when_ready(server.url, lines, out=out, poll_s=0.05).join(timeout=120)
        text = out.getvalue()
        assert text.splitlines()[-1] == "ready" and text.count("ready\n") == 1
        assert "export OPENAI_API_KEY=gs-test" in text and f"{server.url}/v1" in text
        assert httpx.get(f"{server.url}/ready", timeout=10).status_code == 200
    finally:
        server.stop()
    stop.set()
    waiting.join(timeout=30)
    assert not waiting.is_alive() and quiet.getvalue() == "", "nothing is printed before the server answers"


def test_base_url_of_wildcard_hosts() -> None:
    assert base_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert base_url("::1", 9) == "http://[::1]:9"
    assert base_url("localhost", 1) == "http://localhost:1"
