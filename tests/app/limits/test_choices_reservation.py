"""Admission reserves tokens for every choice the upstream generates: ``n`` choices, and for completions ``best_of``
candidates (the upstream generates that many and returns ``n``), each up to ``max_tokens``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.access import create_key, fast_gateway
from tests.support.redis import SHARED_URL
from tests.support.servers import LiveServer

pytestmark = pytest.mark.usefixtures("needs_shared_redis")

MAX_TOKENS = 300  # a key's 1,000 tokens per minute fit one or two choices of it, never four


@pytest.fixture(scope="module")
def gateway() -> Iterator[LiveServer]:
    with fast_gateway(SHARED_URL) as server:
        yield server


def complete(server: LiveServer, key: str, **fields: Any) -> httpx.Response:
    body = {"model": "fast", "prompt": "Say hi.", "max_tokens": MAX_TOKENS, **fields}
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{server.v1}/completions", json=body, headers=headers, timeout=60)


@pytest.mark.parametrize(
    ("fields", "fits"),
    [({}, True), ({"n": 4}, False), ({"best_of": 4}, False), ({"n": 1, "best_of": 4}, False), ({"n": 2}, True)],
    ids=["one", "n=4", "best_of=4", "n=1,best_of=4", "n=2"],
)
def test_every_generated_choice_is_reserved(gateway: LiveServer, fields: dict[str, Any], fits: bool) -> None:
    key = create_key(gateway, limits={"tokens_per_minute": 1000})["key"]
    answer = complete(gateway, key, **fields)
    if fits:
        assert answer.status_code == 200, answer.text
    else:
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["code"] == "request_too_large"
