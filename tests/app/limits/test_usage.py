"""``GET /admin/usage``: each key's and tenant's use of its limits, read from the limiter (Redis, or process memory
without Redis), scoped like the rest of the admin API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.access import ADMIN_KEY, create_key, fast_gateway
from tests.support.fake_upstream import USAGE
from tests.support.redis import SHARED_URL, shared_redis_available
from tests.support.servers import LiveServer
from tests.support.waits import SETTLE_S, wait_until

LIMITS = {"requests_per_minute": 100, "tokens_per_minute": 100_000, "concurrent": 5, "tokens_per_day": 1_000_000}
PER_REQUEST = USAGE["total_tokens"]  # what the fake upstream reports each answer used


@pytest.fixture(scope="module", params=["redis", "memory"])
def gateway(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    if request.param == "redis" and not shared_redis_available():
        request.getfixturevalue("needs_shared_redis")  # skips outside CI, fails in CI
    with fast_gateway(SHARED_URL if request.param == "redis" else None) as server:
        yield server


def read_usage(server: LiveServer, key: str = ADMIN_KEY, tenant: str | None = None) -> httpx.Response:
    params = {"tenant": tenant} if tenant else {}
    return httpx.get(f"{server.url}/admin/usage", params=params, headers={"Authorization": f"Bearer {key}"})


def row(answer: dict[str, Any], key_id: str) -> dict[str, Any]:
    return next(r for r in answer["data"] if r.get("key_id") == key_id)


def test_a_keys_use_and_its_limits(gateway: LiveServer) -> None:
    key = create_key(gateway, tenant="usage-a", limits=LIMITS)
    client = openai.OpenAI(base_url=gateway.v1, api_key=key["key"], max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}], max_tokens=8)

    def settled() -> dict[str, Any] | None:
        mine = row(read_usage(gateway, tenant="usage-a").json(), key["id"])
        return mine if mine["usage"]["tokens"] == 3 * PER_REQUEST else None  # reservations replaced by use

    wait_until(settled, timeout=SETTLE_S, what="the three settlements counted")
    mine = settled()
    assert mine is not None
    assert mine["usage"] == {"requests": 3, "tokens": 18, "concurrent": 0, "tokens_today": 18}
    assert mine["limits"]["requests_per_minute"] == 100 and mine["limits"]["concurrent"] == 5
    assert mine["scope"] == "key" and mine["tenant"] == "usage-a"
    tenant_row = next(r for r in read_usage(gateway, tenant="usage-a").json()["data"] if r["scope"] == "tenant")
    assert tenant_row["tenant"] == "usage-a"  # the tenant's own scope is listed (unlimited here: not counted)


def test_a_tenant_admin_sees_its_own_tenant_only(gateway: LiveServer) -> None:
    create_key(gateway, tenant="usage-b", limits=LIMITS)
    other = create_key(gateway, tenant="usage-c", limits=LIMITS)
    boss = create_key(gateway, tenant="usage-b", role="tenant_admin", limits=LIMITS)
    assert read_usage(gateway, boss["key"], tenant="usage-c").status_code == 403
    answer = read_usage(gateway, boss["key"]).json()
    assert {r["tenant"] for r in answer["data"]} == {"usage-b"}
    assert other["id"] not in json.dumps(answer)
    everything = read_usage(gateway).json()
    assert {"usage-b", "usage-c"} <= {r["tenant"] for r in everything["data"]}
    user = create_key(gateway, tenant="usage-b")
    assert read_usage(gateway, user["key"]).status_code == 403  # not an admin role
