"""Project-wide rules: lint and types clean, the gateway installs and starts without torch."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support.waits import SUBPROCESS_S

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        # a fresh clone has no .mypy_cache: a cold strict run took 209-226 s on a loaded machine
        pytest.param(["mypy"], marks=[pytest.mark.slow, pytest.mark.timeout(1800)]),
    ],
    ids=["ruff", "ruff-format", "mypy"],
)
def test_code_is_clean(command: list[str]) -> None:
    result = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_install_has_no_torch() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"]).lower()
    assert "torch" not in base and "transformers" not in base
    assert any(d.startswith("torch==2.13.0") for d in project["optional-dependencies"]["engine"])


def test_gateway_runs_without_torch() -> None:
    """The gateway (guardrails on, a vLLM-style upstream model) works where torch and transformers are not installed.

    spaCy imports torch when it is present, so "not installed" is simulated by refusing the import."""
    code = """
import sys
class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NotInstalled())
from fastapi.testclient import TestClient
from guardserve.app.main import create_app
from guardserve.app.settings import Settings
from guardserve.models.registry import ModelEntry
entry = ModelEntry(name="remote", engine="openai", url="http://127.0.0.1:9/v1", context_length=4096)
with TestClient(create_app(Settings(models=[entry]))) as client:
    assert client.get("/v1/models").json()["data"][0]["id"] == "remote"
    assert client.get("/ready").json()["guardrails"] == {"enabled": True}
    info = client.app.state.services.guardrails.info()
    assert info["ner"] is True, info
    moderation = client.post("/v1/moderations", json={"input": "mail me at ann@example.org"}).json()
    assert moderation["results"][0]["categories"]["pii"] is True, moderation
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=SUBPROCESS_S
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
