"""Registry reload without a restart: streams in flight on a removed version all complete, new requests go to the
new version, a bad registry changes nothing, and only admin keys may reload."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from guardserve.app.feedback.settings import FeedbackSettings
from guardserve.app.main import create_app
from tests.conftest import TINY
from tests.support.access import admin, create_key, secure_settings
from tests.support.servers import LiveServer, serve_in_thread

STREAMS, TOKENS = 6, 120


def write_registry(path: Path, checkpoint: Path, label: str) -> None:
    path.write_text(f"models:\n  {TINY}:\n    engine: cpu\n    checkpoint: {checkpoint}\n    label: {label}\n")


@pytest.fixture
def reloadable(tiny_checkpoint: Path, tmp_path: Path) -> Iterator[tuple[LiveServer, Path, str]]:
    registry = tmp_path / "registry.yaml"
    write_registry(registry, tiny_checkpoint, "v1")
    settings = secure_settings([], None, feedback=FeedbackSettings(file=tmp_path / "feedback.jsonl"))
    server = serve_in_thread(create_app(settings.model_copy(update={"registry": registry})))
    try:
        yield server, registry, create_key(server, "acme")["key"]
    finally:
        server.stop()


def version_of(server: LiveServer, key: str) -> str:
    client = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=TINY, messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    return raw.headers["x-guardserve-model-version"]


def test_streams_in_flight_during_a_reload_all_complete(
    reloadable: tuple[LiveServer, Path, str], tiny_checkpoint: Path
) -> None:
    server, registry, key = reloadable
    assert version_of(server, key) == "v1"
    started = threading.Barrier(STREAMS + 1, timeout=300)

    def stream(i: int) -> tuple[int, str | None, int | None]:
        client = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0, timeout=600)
        chunks = client.chat.completions.create(
            model=TINY,
            messages=[{"role": "user", "content": f"tell me a long story {i}"}],
            max_tokens=TOKENS,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"ignore_eos": True},
        )
        it = iter(chunks)
        first = next(it)
        started.wait()  # every stream is running on v1 before the reload
        finish, usage, count = None, None, int(bool(first.choices))
        for chunk in it:
            count += 1
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
            if chunk.usage is not None:
                usage = chunk.usage.completion_tokens
        return count, finish, usage

    with ThreadPoolExecutor(STREAMS) as pool:
        futures = [pool.submit(stream, i) for i in range(STREAMS)]
        started.wait()
        write_registry(registry, tiny_checkpoint, "v2")
        with admin(server) as client:
            reload = client.post("/admin/models/reload", timeout=300)
        assert reload.status_code == 200, reload.text
        assert reload.json()["started"] == [f"{TINY}@v2"] and reload.json()["removed"] == [f"{TINY}@v1"]
        assert version_of(server, key) == "v2"  # new requests: the new version, while the old one drains
        results = [f.result(timeout=600) for f in futures]
    assert all(finish == "length" and usage == TOKENS for _, finish, usage in results), results


def test_a_bad_registry_changes_nothing_and_users_may_not_reload(reloadable: tuple[LiveServer, Path, str]) -> None:
    server, registry, key = reloadable
    registry.write_text("models:\n  broken:\n    engine: cpu\n")  # no checkpoint
    with admin(server) as client:
        refused = client.post("/admin/models/reload")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "registry_not_reloaded"
    assert "needs 'checkpoint'" in refused.json()["error"]["message"]
    assert version_of(server, key) == "v1"
    as_user = httpx.post(server.url + "/admin/models/reload", headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert as_user.status_code == 403
