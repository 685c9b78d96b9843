"""A key's guardrails policy reaches the guardrails, and a guard-blocked prompt gets its reservation back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import redis

from guardserve.app.limits.model import Scope
from guardserve.app.limits.redis_limiter import scope_keys
from guardserve.app.limits.settings import Limits
from guardserve.app.settings import GuardrailSettings
from tests.conftest import TINY
from tests.support.access import create_key, secure_gateway
from tests.support.redis import SHARED_URL
from tests.support.servers import LiveServer, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("needs_shared_redis")]

SSN = [{"role": "user", "content": "my SSN is 536-22-1234, remember it"}]


@pytest.fixture(scope="module")
def guarded(tiny_checkpoint: Path) -> Iterator[tuple[LiveServer, str]]:
    with secure_gateway(tiny_checkpoint, SHARED_URL, guardrails=GuardrailSettings()) as server:
        yield server


def test_the_keys_policy_applies_and_a_blocked_prompt_is_refunded(guarded: tuple[LiveServer, str]) -> None:
    server, prefix = guarded
    strict = create_key(server, policy="strict", limits={"tokens_per_minute": 100_000})
    default = create_key(server, limits={"tokens_per_minute": 100_000})
    with pytest.raises(openai.BadRequestError) as err:
        openai.OpenAI(base_url=server.v1, api_key=strict["key"], max_retries=0).chat.completions.create(
            model=TINY, messages=SSN, max_tokens=50
        )
    assert err.value.code == "pii_detected"
    assert err.value.response.headers["x-guardrails-policy"] == "strict"
    tokens = scope_keys(prefix, "acme", Scope("key", strict["id"], Limits()), "")[1]
    store = redis.Redis.from_url(SHARED_URL)
    wait_until(lambda: int(store.get(tokens) or 0) == 0)  # blocked before the engine: all refunded
    store.close()
    client = openai.OpenAI(base_url=server.v1, api_key=default["key"], max_retries=0)
    answer = client.chat.completions.with_raw_response.create(model=TINY, messages=SSN, max_tokens=5)
    assert answer.headers["x-guardrails-policy"] == "default"  # pseudonymized, not blocked
