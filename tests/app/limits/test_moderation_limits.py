"""``/v1/moderations`` goes through admission like the completions routes, against its own limits (shared Redis)."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from guardserve.app.limits.settings import Limits
from guardserve.app.settings import GuardrailSettings
from tests.support.access import create_key, secure_gateway


def test_moderation_is_refused_with_429_when_its_limit_is_used_up(
    tiny_checkpoint: Path, shared_redis: tuple[str, str]
) -> None:
    url, _ = shared_redis
    with secure_gateway(
        tiny_checkpoint, url, guardrails=GuardrailSettings(), moderation=Limits(requests_per_minute=2)
    ) as (server, _prefix):
        key = create_key(server)
        client = openai.OpenAI(base_url=server.v1, api_key=key["key"], max_retries=0)
        for _ in range(2):
            assert client.moderations.create(input="Have a nice day").results
        with pytest.raises(openai.RateLimitError) as err:
            client.moderations.create(input="Have a nice day")
        assert int(err.value.response.headers["Retry-After"]) >= 1
        assert "2 requests per minute" in err.value.response.json()["error"]["message"]
        other = openai.OpenAI(base_url=server.v1, api_key=create_key(server)["key"], max_retries=0)
        assert other.moderations.create(input="Have a nice day").results  # per key: another key has its own
