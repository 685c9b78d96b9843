"""The wheel is the product: built from this checkout, installed (not editable) into a fresh venv, it serves the
default model with guardrails on from a directory that is not the repository.

The fresh venv borrows third-party dependencies from the suite's own environment through a path file (a full
dependency install takes minutes and is what the lock files are for); a path file adds a directory without running
that directory's own ``.pth`` files, so the suite's editable install of this project stays invisible and every
project module must come from the wheel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.support.processes import ServerProcess, clean_env, free_port, wait_ready
from tests.support.waits import STARTUP_S, SUBPROCESS_S

ROOT = Path(__file__).resolve().parents[1]
# The repository's directories app/, guardrails/, models/, training/ install as subpackages of one import package,
# guardserve (pyproject.toml's package-dir): no generic top-level names, none shared with other distributions
# (`guardrails` is guardrails-ai's import name).
SOURCES = ("app", "guardrails", "models", "training")
PACKAGES = tuple(f"guardserve.{s}" for s in SOURCES)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT), "-w", str(out)]
    subprocess.run(cmd, check=True, timeout=SUBPROCESS_S, cwd=out)
    (built,) = out.glob("guardserve-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (no editable install, no repository on its path); returns its python."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    with zipfile.ZipFile(wheel) as archive:  # what `pip install --no-deps` does for a pure wheel, minus pip
        archive.extractall(site)
    (site / "zz-borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    (target,) = entry_points(wheel)  # what pip writes as bin/guardserve, minus pip
    module, _, function = target.partition(":")
    entry = env_dir / "bin" / "guardserve"
    entry.write_text(
        f"#!{python}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n", encoding="utf-8"
    )
    entry.chmod(0o755)
    return python


def entry_points(wheel: Path) -> list[str]:
    """The wheel's console scripts named ``guardserve``: their ``module:function`` targets."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(name).decode()
    section = text.split("[console_scripts]", 1)[1].split("\n[", 1)[0]
    pairs = [line.split("=", 1) for line in section.splitlines() if "=" in line]
    return [target.strip() for script, target in pairs if script.strip() == "guardserve"]


def test_the_wheel_carries_what_the_defaults_need(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    needed = [
        "guardserve/__init__.py",
        "guardserve/guardrails/policies.yaml",
        "guardserve/guardrails/pii/recognizers.yaml",
        "guardserve/models/registry.yaml",
        "guardserve/models/checkpoints/guardserve-tiny/model.safetensors",
        "guardserve/models/checkpoints/guardserve-tiny/tokenizer.json",
        "guardserve/models/checkpoints/guardserve-tiny/config.json",
        "guardserve/models/guards/guardserve-guards/heads.safetensors",
        "guardserve/models/guards/minilm-l6-static-256/model.safetensors",
        "guardserve/app/ui/static/index.html",
    ]
    assert [n for n in needed if n not in names] == []
    assert not [n for n in names if n.startswith(("tests/", "runs/", ".venv/"))]


def test_the_wheel_installs_one_top_level_package(wheel: Path) -> None:
    """Only ``guardserve`` (and the dist-info): not app, models, training, nor guardrails (guardrails-ai's name)."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        declared = archive.read(top_level).decode().split()
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert tops == {"guardserve"}, tops
    assert declared == ["guardserve"], declared
    assert entry_points(wheel) == ["guardserve.app.cli:main"]


def test_the_wheel_carries_every_module_of_the_tree(wheel: Path) -> None:
    """setup.py finds the subpackages (namespace ones included): a module added anywhere under them is shipped."""
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(  # the tree's own modules, not what is git-ignored (a downloaded wheel's, say)
        ["git", "ls-files", "--", *(f"{s}/*.py" for s in SOURCES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    sources = tracked.stdout.split()
    assert sources and [f for f in sources if f"guardserve/{f}" not in names] == []


def test_the_installed_wheel_provides_none_of_the_old_top_level_names(installed: Path, tmp_path: Path) -> None:
    code = "import importlib.util, json; print(json.dumps([importlib.util.find_spec(n) is None for n in "
    code += repr(list(SOURCES)) + "]))"
    out = subprocess.run(
        [str(installed), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path, env=clean_env()
    )
    assert json.loads(out.stdout) == [True] * len(SOURCES), dict(zip(SOURCES, json.loads(out.stdout), strict=True))


def test_imports_come_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    code = "import json, " + ", ".join(PACKAGES) + "; print(json.dumps([m.__file__ for m in (" + ", ".join(PACKAGES)
    code += ")]))"  # namespace packages have no __file__: each of the four has an __init__.py
    out = subprocess.run(
        [str(installed), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path, env=clean_env()
    )
    files = [Path(f) for f in json.loads(out.stdout)]
    venv_dir = installed.parent.parent
    assert all(venv_dir in f.parents for f in files), files
    assert not any(ROOT in f.parents for f in files), files


@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    log = tmp_path / "gateway.log"
    env = clean_env({"GUARDSERVE_AUTH__ENABLED": "false", "GUARDSERVE_LIMITS__ENABLED": "false"})
    entry = installed.parent / "guardserve"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(entry), "serve", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
        )
    server = ServerProcess(process, port, log)
    try:
        wait_ready([server], "/health", STARTUP_S)
        yield server
    finally:
        server.stop()


def test_the_installed_gateway_serves_the_default_model_with_guards(served: ServerProcess) -> None:
    client = OpenAI(base_url=served.url + "/v1", api_key="unused", timeout=STARTUP_S, max_retries=0)
    assert "guardserve-tiny" in [m.id for m in client.models.list().data]
    raw = client.chat.completions.with_raw_response.create(
        model="guardserve-tiny",
        messages=[{"role": "user", "content": "What is 12 + 30? Reply to jane.doe@example.com"}],
        max_tokens=16,
    )
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-guardrails-policy"] == "default"
    assert "EMAIL_ADDRESS" in raw.headers["x-guardrails-input"]
