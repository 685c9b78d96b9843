"""Retention expiry with a short TTL (Redis), and the dev-mode file store (no Redis): feedback survives a restart,
scrubbed, and the start-up says loudly where it lives."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis

from guardserve.app.feedback import layout
from guardserve.app.feedback.settings import DAY_S, FeedbackSettings
from guardserve.app.main import create_app
from tests.conftest import TINY, cpu_settings
from tests.support.access import create_key, secure_gateway
from tests.support.redis import SHARED_URL
from tests.support.servers import serve_in_thread, wait_until


def _complete(url: str, key: str) -> str:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    return client.chat.completions.create(model=TINY, messages=[{"role": "user", "content": "hi"}], max_tokens=2).id


@pytest.mark.usefixtures("needs_shared_redis")
def test_records_expire_and_feedback_is_then_metadata_only(tiny_checkpoint: Path) -> None:
    short = FeedbackSettings(ttl_days=2 / DAY_S, owner_extra_days=600 / DAY_S)
    with secure_gateway(tiny_checkpoint, SHARED_URL, feedback=short) as (server, prefix):
        a, b = create_key(server, "ta")["key"], create_key(server, "tb")["key"]
        response_id = _complete(server.url, a)
        client: Any = redis.Redis.from_url(SHARED_URL)
        key = layout.response_key(prefix, "ta", response_id)
        wait_until(lambda: client.exists(key), what="the record")
        assert 0 < client.pttl(key) <= 2000
        wait_until(lambda: not client.exists(key), what="the record's expiry")
        body = {"response_id": response_id, "rating": "up"}
        rated = httpx.post(f"{server.v1}/feedback", json=body, headers={"Authorization": f"Bearer {a}"}, timeout=30)
        assert rated.status_code == 201 and rated.json()["record_kept"] is False
        other = httpx.post(f"{server.v1}/feedback", json=body, headers={"Authorization": f"Bearer {b}"}, timeout=30)
        assert other.status_code == 404


def test_dev_file_store_survives_a_restart_scrubbed(
    tiny_checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    file = tmp_path / "feedback.jsonl"
    settings = cpu_settings(tiny_checkpoint, feedback=FeedbackSettings(file=file))  # no Redis, auth off
    server = serve_in_thread(create_app(settings))
    try:
        assert "DEV MODE" in caplog.text and str(file) in caplog.text
        response_id = _complete(server.url, "unused")

        def rate() -> httpx.Response:
            body = {"response_id": response_id, "rating": 2, "comment": "mail me at jane.roe@example.com"}
            return httpx.post(f"{server.v1}/feedback", json=body, timeout=30)

        wait_until(lambda: rate().status_code == 201, what="the response's record")  # written after the answer
        created = rate().json()  # idempotent: the same one again
        assert created["record_kept"] is True and "<EMAIL_ADDRESS>" in created["comment"]
    finally:
        server.stop()
    assert "jane.roe" not in file.read_text() and created["id"] in file.read_text()
    again = serve_in_thread(create_app(settings))
    try:
        got = httpx.get(f"{again.v1}/feedback/{created['id']}", timeout=30)
        assert got.status_code == 200 and got.json() == created
        assert httpx.delete(f"{again.v1}/feedback/{created['id']}", timeout=30).status_code == 200
    finally:
        again.stop()
    third = serve_in_thread(create_app(settings))
    try:
        assert httpx.get(f"{third.v1}/feedback/{created['id']}", timeout=30).status_code == 404  # erased for good
    finally:
        third.stop()
