"""ModelSet: a reload starts only what changed, keeps what did not, and closes a removed version only after the
requests on it have finished."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from guardserve.app.model_set import ModelSet
from guardserve.models.registry import CandidateEntry, ModelEntry, ServedModel


class FakeEngine:
    def __init__(self) -> None:
        self.closed = asyncio.Event()

    async def aclose(self) -> None:
        self.closed.set()


class Registry:
    def __init__(self) -> None:
        self.entries = [ModelEntry(name="m", engine="cpu", checkpoint=Path("/a"), label="v1")]
        self.started: list[str] = []

    def read(self) -> list[ModelEntry]:
        return list(self.entries)

    async def start(self, entry: ModelEntry) -> ServedModel:
        self.started.append(entry.version)
        return ServedModel(entry, FakeEngine(), 256, True, 0)  # type: ignore[arg-type]


def model_set(registry: Registry) -> ModelSet:
    def same(served: ServedModel) -> ServedModel:
        return served

    return ModelSet(registry.read, registry.start, same)


def candidate(percent: float) -> CandidateEntry:
    return CandidateEntry(label="v2", percent=percent, checkpoint=Path("/b"))


async def test_an_unchanged_version_keeps_its_engine_and_a_new_share_starts_nothing() -> None:
    registry = Registry()
    models = model_set(registry)
    await models.start()
    stable = models.models["m"]
    registry.entries = [registry.entries[0].model_copy(update={"candidate": candidate(10)})]
    assert (await models.reload())["started"] == ["m@v2"]
    assert models.models["m"] is stable and models.canaries["m"].percent == 10
    registry.entries = [registry.entries[0].model_copy(update={"candidate": candidate(50)})]
    changes = await models.reload()
    assert changes["started"] == [] and models.canaries["m"].percent == 50
    assert registry.started == ["v1", "v2"]
    await models.aclose()


async def test_a_removed_version_closes_only_after_its_requests() -> None:
    registry = Registry()
    models = model_set(registry)
    await models.start()
    old = models.models["m"]
    release = models.acquire(old)  # a request (a stream, say) is on v1
    registry.entries = [registry.entries[0].model_copy(update={"label": "v2", "checkpoint": Path("/b")})]
    assert (await models.reload())["removed"] == ["m@v1"]
    assert models.models["m"].entry.version == "v2"
    engine: Any = old.engine
    await asyncio.sleep(0.05)
    assert not engine.closed.is_set()  # still serving its request
    release()
    await asyncio.wait_for(engine.closed.wait(), 30)
    await models.aclose()


async def test_a_registry_that_fails_to_load_changes_nothing() -> None:
    registry = Registry()
    models = model_set(registry)
    await models.start()

    def broken() -> list[ModelEntry]:
        raise RuntimeError("bad registry")

    models._entries = broken
    with pytest.raises(RuntimeError, match="bad registry"):
        await models.reload()
    assert models.models["m"].entry.version == "v1"
    await models.aclose()
