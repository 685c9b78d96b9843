"""Tenant-scoped administration: a `tenant_admin` key manages its own tenant's keys and nothing else.

Every cross-tenant attempt is tried: reading, revoking and rotating a key of another tenant answers exactly as for
a key that does not exist (404, same body apart from the id), so the API is no oracle; creating keys in another
tenant or an admin key, and listing another tenant, are 403. Every admin action is in the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from guardserve.app.main import create_app
from guardserve.models.registry import ModelEntry
from tests.support.access import admin, create_key, secure_settings
from tests.support.redis import SHARED_URL, delete_prefix, new_prefix
from tests.support.servers import LiveServer, serve_in_thread, wait_until

pytestmark = pytest.mark.usefixtures("needs_shared_redis")


@pytest.fixture(scope="module")
def setup(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Path]]:
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    prefix = new_prefix()
    settings = secure_settings([ModelEntry(name="tiny", engine="cpu", checkpoint=tiny_checkpoint)], SHARED_URL, prefix)
    settings = settings.model_copy(
        update={"observability": settings.observability.model_copy(update={"audit_log": str(audit)})}
    )
    server = serve_in_thread(create_app(settings))
    yield server, audit
    server.stop()
    delete_prefix(SHARED_URL, prefix)


def as_key(server: LiveServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def without_id(response: httpx.Response, key_id: str) -> Any:
    return json.loads(response.text.replace(key_id, "ID"))


def test_a_tenant_admin_manages_its_own_tenant(setup: tuple[LiveServer, Path]) -> None:
    server, _ = setup
    boss = create_key(server, tenant="acme", role="tenant_admin")
    with as_key(server, boss["key"]) as a:
        made = a.post("/admin/keys", json={"tenant": "acme", "name": "worker"})
        assert made.status_code == 201 and made.json()["tenant"] == "acme"
        deputy = a.post("/admin/keys", json={"tenant": "acme", "role": "tenant_admin"})
        assert deputy.status_code == 201
        listed = {k["id"] for k in a.get("/admin/keys").json()["data"]}
        assert {made.json()["id"], deputy.json()["id"], boss["id"]} <= listed
        assert a.get(f"/admin/keys/{made.json()['id']}").status_code == 200
        assert a.post(f"/admin/keys/{made.json()['id']}/rotate").status_code == 201
        assert a.delete(f"/admin/keys/{made.json()['id']}").json()["state"] == "revoked"


def test_every_cross_tenant_attempt_is_refused_without_an_oracle(setup: tuple[LiveServer, Path]) -> None:
    server, _ = setup
    boss = create_key(server, tenant="acme", role="tenant_admin")
    other = create_key(server, tenant="globex")
    platform = create_key(server, tenant="acme", role="admin")  # an admin key inside acme: still out of reach
    missing = "ffffffffffff"
    with as_key(server, boss["key"]) as a:
        for target in (other["id"], platform["id"]):
            for method, path in (("GET", ""), ("DELETE", ""), ("POST", "/rotate")):
                refused = a.request(method, f"/admin/keys/{target}{path}")
                nothing = a.request(method, f"/admin/keys/{missing}{path}")
                assert refused.status_code == nothing.status_code == 404
                assert without_id(refused, target) == without_id(nothing, missing)
        assert a.post("/admin/keys", json={"tenant": "globex"}).status_code == 403
        assert a.post("/admin/keys", json={"tenant": "acme", "role": "admin"}).status_code == 403
        assert a.get("/admin/keys", params={"tenant": "globex"}).status_code == 403
        listed = {k["id"] for k in a.get("/admin/keys").json()["data"]}
        assert other["id"] not in listed and platform["id"] not in listed
    with admin(server) as root:  # nothing changed for the keys it tried
        assert root.get(f"/admin/keys/{other['id']}").json()["state"] == "active"
        assert root.get(f"/admin/keys/{platform['id']}").json()["state"] == "active"
        assert len(root.get("/admin/keys", params={"tenant": "globex"}).json()["data"]) >= 1


def test_a_user_key_has_no_admin_api(setup: tuple[LiveServer, Path]) -> None:
    server, _ = setup
    user = create_key(server, tenant="acme")
    with as_key(server, user["key"]) as u:
        response = u.get("/admin/keys")
    assert response.status_code == 403 and response.json()["error"]["code"] == "insufficient_permissions"


def test_admin_actions_are_in_the_audit_log(setup: tuple[LiveServer, Path]) -> None:
    server, audit = setup
    boss = create_key(server, tenant="acme", role="tenant_admin")
    with as_key(server, boss["key"]) as a:
        made = a.post("/admin/keys", json={"tenant": "acme"}).json()
        a.delete(f"/admin/keys/{made['id']}")
        a.get("/admin/keys/ffffffffffff")

    def lines() -> list[dict[str, Any]]:
        if not audit.exists():
            return []
        return [json.loads(line) for line in audit.read_text().splitlines() if line.strip()]

    def mine() -> list[dict[str, Any]]:
        return [line for line in lines() if line.get("key_id") == boss["id"] and "admin" in line]

    wait_until(lambda: len(mine()) >= 3, timeout=30, what="three admin actions in the audit log")
    actions = [(line["admin"]["action"], line["status"]) for line in mine()]
    assert ("create", 201) in actions and ("revoke", 200) in actions and ("get", 404) in actions
    created = next(line for line in mine() if line["admin"]["action"] == "create")
    assert created["admin"] == {"action": "create", "key_id": made["id"], "tenant": "acme"}
    assert created["role"] == "tenant_admin"
    assert made["key"] not in audit.read_text(), "never the key itself"


def test_a_tenant_admin_cannot_mint_keys_beyond_its_own_bounds(setup: tuple[LiveServer, Path]) -> None:
    """Its keys screen at least as strictly as its own and may use no more than it may (found in review)."""
    server, _ = setup
    strict = create_key(server, tenant="acme", role="tenant_admin", policy="strict")
    with as_key(server, strict["key"]) as a:
        assert a.post("/admin/keys", json={"tenant": "acme", "policy": "unguarded"}).status_code == 403
        assert a.post("/admin/keys", json={"tenant": "acme"}).status_code == 403  # the default is weaker
        assert a.post("/admin/keys", json={"tenant": "acme", "policy": "strict"}).status_code == 201
    limited = create_key(server, tenant="acme", role="tenant_admin", limits={"requests_per_minute": 5})
    with as_key(server, limited["key"]) as a:
        for limits in ({"requests_per_minute": 0}, {"requests_per_minute": 6}, {}):  # 0: unlimited; {}: unset
            assert a.post("/admin/keys", json={"tenant": "acme", "limits": limits}).status_code == 403, limits
        made = a.post("/admin/keys", json={"tenant": "acme", "limits": {"requests_per_minute": 5, "concurrent": 2}})
        assert made.status_code == 201


def test_the_playground_reads_policies_with_a_key_only(setup: tuple[LiveServer, Path]) -> None:
    server, _ = setup
    assert httpx.get(f"{server.url}/ui/", timeout=30).status_code == 200  # the page itself is open
    assert httpx.get(f"{server.url}/ui/api/guardrails", timeout=30).status_code == 401
    user = create_key(server, tenant="acme")
    with as_key(server, user["key"]) as u:
        assert u.get("/ui/api/guardrails").status_code == 200
