"""The lock files (requirements/*.lock, written by `make lock`) are what `make serve`, `make test` and the images
install from: each must satisfy pyproject.toml's requirements for its extras, and they must agree with one another."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCKS = {"gateway": [], "serve": ["engine"], "dev": ["train", "dev"]}


def locked(name: str) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "requirements" / f"{name}.lock").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            package, version = line.split("==")
            pins[canonicalize_name(package)] = Version(version)
    return pins


def required(extras: list[str]) -> list[Requirement]:
    """The base requirements plus those of ``extras``, following self-references such as ``guardserve[engine]``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    todo, seen, out = list(extras), set(), [Requirement(r) for r in project["dependencies"]]
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in project["optional-dependencies"][extra]:
            requirement = Requirement(text)
            if requirement.name == project["name"]:
                todo.extend(requirement.extras)
            else:
                out.append(requirement)
    return [r for r in out if r.marker is None or r.marker.evaluate()]


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_a_lock_satisfies_pyproject(lock: str) -> None:
    pins = locked(lock)
    problems = []
    for requirement in required(LOCKS[lock]):
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} -> {version}")
    assert problems == [], f"requirements/{lock}.lock is stale: run `make lock`"


def test_the_locks_agree_and_the_gateway_has_no_torch() -> None:
    pins = {name: locked(name) for name in LOCKS}
    assert "torch" not in pins["gateway"] and "transformers" not in pins["gateway"]
    assert str(pins["serve"]["torch"]) == "2.13.0+cpu"  # the CPU build, never a CUDA one
    for name in ("gateway", "serve"):
        disagree = {p: (v, pins["dev"].get(p)) for p, v in pins[name].items() if pins["dev"].get(p) != v}
        assert disagree == {}, f"{name}.lock and dev.lock pin different versions"
