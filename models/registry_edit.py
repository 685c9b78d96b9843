"""Change a model's versions in the registry file: add a candidate, promote it, roll it back.

    guardserve models candidate NAME --label v2 --percent 10 (--checkpoint DIR | --url URL [--upstream-model M])
    guardserve models promote NAME        # the candidate becomes the stable version; no candidate left
    guardserve models rollback NAME       # the candidate goes; the stable version takes all the traffic

Each writes the file only after the changed registry validates (every entry, as start-up would read it), then a
running gateway applies it with ``POST /admin/models/reload`` or ``SIGHUP`` (:mod:`guardserve.app.model_set`).
The file is rewritten by PyYAML: its comments are not kept.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from guardserve.models.registry import RegistryError, load_registry


def _read(path: Path) -> dict[str, Any]:
    load_registry(path)  # a registry that does not load is not edited
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return raw


def _entry(raw: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    entry = raw["models"].get(name)
    if not isinstance(entry, dict):
        raise RegistryError(f"model registry {path} has no model {name!r}")
    return entry


def _write(path: Path, raw: dict[str, Any]) -> None:
    text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".yaml", delete=False, encoding="utf-8") as tmp:
        tmp.write(text)
    try:
        load_registry(tmp.name)  # relative checkpoints resolve the same (same folder)
        os.chmod(tmp.name, path.stat().st_mode & 0o777)
        os.replace(tmp.name, path)
    finally:
        if os.path.exists(tmp.name):
            os.unlink(tmp.name)


def add_candidate(path: Path, name: str, label: str, percent: float, **where: str | None) -> dict[str, Any]:
    """Give ``name`` a candidate (``checkpoint``, or ``url`` / ``upstream_model``) with ``percent`` of its traffic."""
    raw = _read(path)
    entry = _entry(raw, name, path)
    entry["candidate"] = {"label": label, "percent": percent, **{k: v for k, v in where.items() if v is not None}}
    _write(path, raw)
    return entry


def promote(path: Path, name: str) -> dict[str, Any]:
    """The candidate's label and checkpoint (or upstream) become the entry's own; the candidate is gone."""
    raw = _read(path)
    entry = _entry(raw, name, path)
    candidate = entry.pop("candidate", None)
    if not candidate:
        raise RegistryError(f"model {name!r} has no candidate to promote")
    candidate.pop("percent", None)
    entry.update(candidate)
    _write(path, raw)
    return entry


def rollback(path: Path, name: str) -> dict[str, Any]:
    """The candidate is gone: the stable version answers every request again."""
    raw = _read(path)
    entry = _entry(raw, name, path)
    if entry.pop("candidate", None) is None:
        raise RegistryError(f"model {name!r} has no candidate to roll back")
    _write(path, raw)
    return entry
