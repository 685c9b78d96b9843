"""Keys through the real API: 401/403 envelopes before any body parsing, the admin API, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import openai
import pytest
import redis

from tests.conftest import TINY
from tests.support.access import ADMIN_KEY, PEPPER, admin, create_key, secure_gateway
from tests.support.redis import SHARED_URL
from tests.support.servers import LiveServer, wait_until
from tests.support.waits import SUBPROCESS_S

pytestmark = pytest.mark.usefixtures("needs_shared_redis")


@pytest.fixture(scope="module")
def secured(tiny_checkpoint: Path) -> Iterator[tuple[LiveServer, str]]:
    with secure_gateway(tiny_checkpoint, SHARED_URL) as server:
        yield server


def client(server: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)


def revoked(server: LiveServer, key: str) -> bool:
    try:
        chat(client(server, key))
    except openai.AuthenticationError as exc:
        return exc.code == "api_key_revoked"
    return False


def chat(c: openai.OpenAI) -> None:
    c.chat.completions.create(model=TINY, messages=[{"role": "user", "content": "hi"}], max_tokens=2)


def test_missing_and_wrong_keys_get_401_in_openai_envelope(secured: tuple[LiveServer, str]) -> None:
    server, _ = secured
    response = httpx.post(f"{server.v1}/chat/completions", content=b"{not json", timeout=10)
    assert response.status_code == 401, "auth must run before the body is parsed"
    assert response.json()["error"]["code"] == "missing_api_key"
    assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server.v1}/models", timeout=10).status_code == 401
    with pytest.raises(openai.AuthenticationError) as err:
        chat(client(server, "gs-000000000000-" + "A" * 43))
    assert err.value.code == "invalid_api_key" and "AAAA" not in str(err.value)
    assert httpx.get(f"{server.url}/health", timeout=10).status_code == 200
    assert httpx.get(f"{server.url}/ready", timeout=10).status_code == 200


def test_admin_api_lifecycle(secured: tuple[LiveServer, str]) -> None:
    server, _ = secured
    user = create_key(server, "acme", policy="strict", limits={"requests_per_minute": 50}, name="ci")
    assert user["key"].startswith("gs-") and user["role"] == "user" and user["policy"] == "strict"
    assert "hash" not in user and user["limits"] == {"requests_per_minute": 50}
    chat(client(server, user["key"]))
    response = httpx.get(f"{server.url}/admin/keys", headers={"Authorization": f"Bearer {user['key']}"}, timeout=10)
    assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_permissions"
    with admin(server) as a:
        listed = a.get("/admin/keys", params={"tenant": "acme"}).json()["data"]
        assert user["id"] in [k["id"] for k in listed] and all("key" not in k and "hash" not in k for k in listed)
        bad = a.post("/admin/keys", json={"tenant": "no spaces {allowed}"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "tenant"
        assert a.get("/admin/keys/ffffffffffff").status_code == 404
        rotated = a.post(f"/admin/keys/{user['id']}/rotate", json={"grace_seconds": 0}).json()
        assert rotated["key"] != user["key"] and rotated["policy"] == "strict"
        with pytest.raises(openai.AuthenticationError) as err:
            chat(client(server, user["key"]))
        assert err.value.code == "api_key_revoked"
        chat(client(server, rotated["key"]))
        assert a.delete(f"/admin/keys/{rotated['id']}").json()["state"] == "revoked"
    with pytest.raises(openai.AuthenticationError):
        chat(client(server, rotated["key"]))


def test_keys_may_only_name_known_policies(secured: tuple[LiveServer, str]) -> None:
    server, _ = secured
    services = server.app.state.services
    services.guardrails = SimpleNamespace(policies={"default": None, "strict": None})  # as if guardrails were on
    try:
        with admin(server) as a:
            response = a.post("/admin/keys", json={"tenant": "acme", "policy": "nonexistent"})
            assert response.status_code == 400 and response.json()["error"]["param"] == "policy"
            assert a.post("/admin/keys", json={"tenant": "acme", "policy": "strict"}).status_code == 201
    finally:
        services.guardrails = None


def test_out_of_range_limits_are_refused_before_anything_is_stored(secured: tuple[LiveServer, str]) -> None:
    server, _ = secured
    with admin(server) as a:
        before = {k["id"] for k in a.get("/admin/keys").json()["data"]}
        for body in (
            {"tenant": "huge", "limits": {"concurrent": 2**64}},
            {"tenant": "huge", "limits": {"tokens_per_day": 2**53 + 1}},
            {"tenant": "huge", "name": "\ud800"},
        ):
            response = a.post("/admin/keys", content=json.dumps(body), headers={"content-type": "application/json"})
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == "invalid_value"
        listed = a.get("/admin/keys")
        assert listed.status_code == 200 and {k["id"] for k in listed.json()["data"]} == before
        assert a.post("/admin/keys", json={"tenant": "huge", "limits": {"concurrent": 2**53}}).status_code == 201


def test_an_unreadable_stored_record_is_skipped_not_a_500(secured: tuple[LiveServer, str]) -> None:
    """A record an older version stored (a limit of 2^64, as it once accepted) must not break the admin API."""
    server, prefix = secured
    good = create_key(server, "legacy")
    bad = json.loads(redis.Redis.from_url(SHARED_URL).get(f"{prefix}key:{good['id']}") or b"{}")
    bad["id"], bad["limits"] = "badrecord00", {"concurrent": 2**64}
    store = redis.Redis.from_url(SHARED_URL)
    store.set(f"{prefix}key:badrecord00", json.dumps(bad))
    store.sadd(f"{prefix}keys", "badrecord00")
    with admin(server) as a:
        listed = a.get("/admin/keys", params={"tenant": "legacy"})
        assert listed.status_code == 200 and [k["id"] for k in listed.json()["data"]] == [good["id"]]
        assert a.get("/admin/keys/badrecord00").status_code == 404
        assert a.delete("/admin/keys/badrecord00").status_code == 404
        assert a.get(f"/admin/keys/{good['id']}").status_code == 200


def test_cli_creates_lists_and_revokes(secured: tuple[LiveServer, str]) -> None:
    server, prefix = secured
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDSERVE_")}
    env |= {"GUARDSERVE_REDIS__URL": SHARED_URL, "GUARDSERVE_REDIS__PREFIX": prefix, "GUARDSERVE_AUTH__PEPPER": PEPPER}
    env |= {"GUARDSERVE_GUARDRAILS__ENABLED": "false"}

    def cli(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "guardserve.app.cli", "keys", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_S,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    key = cli("create", "--tenant", "clitenant", "--rpm", "7").splitlines()[-1]
    chat(client(server, key))  # the server verifies what the CLI stored
    key_id = key.split("-")[1]
    assert key_id in cli("list", "--tenant", "clitenant")
    cli("revoke", key_id)
    # another process revoked it: this server notices once its cache entry lapses (auth.cache_seconds, 2 s; the bound
    # itself is tested in test_keys.py without a loaded server in between)
    wait_until(lambda: revoked(server, key), interval=0.1, what="the revoked key refused")
    assert ADMIN_KEY not in cli("list")
