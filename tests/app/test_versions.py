"""A model with a candidate version behind the gateway: each user sticks to one version, both answer, and
/v1/models and /ready show both (the official openai client, two real CPU engines)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from guardserve.app.main import create_app
from guardserve.app.settings import Settings
from guardserve.models.registry import CandidateEntry, ModelEntry
from tests.conftest import NO_GUARDS, TINY
from tests.support.servers import LiveServer, serve_in_thread

BUNDLED = Path(__file__).resolve().parents[2] / "models" / "checkpoints" / "guardserve-tiny"


@pytest.fixture(scope="module")
def split(tiny_checkpoint: Path) -> Iterator[LiveServer]:
    candidate = CandidateEntry(label="v2", percent=50, checkpoint=BUNDLED)
    entry = ModelEntry(name=TINY, engine="cpu", checkpoint=tiny_checkpoint, label="v1", candidate=candidate)
    server = serve_in_thread(create_app(Settings(models=[entry], guardrails=NO_GUARDS)))
    yield server
    server.stop()


def test_each_user_sticks_to_one_version_and_both_versions_answer(split: LiveServer) -> None:
    client = openai.OpenAI(base_url=split.v1, api_key="unused", max_retries=0)
    seen: dict[str, set[str]] = {}
    for i in range(16):
        user = f"user-{i}"
        for _ in range(2):
            raw = client.chat.completions.with_raw_response.create(
                model=TINY, messages=[{"role": "user", "content": "What is 2 + 3?"}], max_tokens=4, user=user
            )
            completion = raw.parse()
            assert completion.model == TINY  # the name the client asked for, whichever version answered
            seen.setdefault(user, set()).add(raw.headers["x-guardserve-model-version"])
    assert all(len(versions) == 1 for versions in seen.values()), seen
    counts = Counter(next(iter(v)) for v in seen.values())
    assert set(counts) == {"v1", "v2"}, counts  # 16 users at 50 %: all on one side has odds 2**-15


def test_models_and_ready_show_both_versions(split: LiveServer) -> None:
    client = openai.OpenAI(base_url=split.v1, api_key="unused", max_retries=0)
    card = client.models.retrieve(TINY)
    assert (card.model_extra or {})["versions"] == [
        {"label": "v1", "traffic_percent": 50.0},
        {"label": "v2", "traffic_percent": 50.0},
    ]
    ready = httpx.get(split.url + "/ready", timeout=60).json()
    assert set(ready["models"]) == {TINY, f"{TINY}@v2"} and ready["status"] == "ready"
