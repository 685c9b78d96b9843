"""The feedback API through a real gateway (the tiny CPU model, keys in the shared Redis): records, ownership,
idempotency, validation, scrubbing and erasure, with the official ``openai`` client for the completions."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
import redis

from guardserve.app.feedback import layout
from guardserve.app.feedback.settings import FeedbackSettings
from tests.conftest import TINY
from tests.support.access import admin, create_key, secure_gateway
from tests.support.metrics import scrape
from tests.support.redis import SHARED_URL
from tests.support.servers import LiveServer, wait_until

pytestmark = pytest.mark.usefixtures("needs_shared_redis")

# Presidio finds every one of these; none may reach Redis, the logs or the audit lines raw.
PII = {
    "email": "jane.roe@example.com",
    "card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
    "phone": "+1 415 555 0132",
}
PII_TEXT = f"Write to {PII['email']} or call {PII['phone']}; card {PII['card']}, IBAN {PII['iban']}, thanks."


@pytest.fixture(scope="module")
def secured(tiny_checkpoint: Path) -> Iterator[tuple[LiveServer, str]]:
    with secure_gateway(tiny_checkpoint, SHARED_URL, feedback=FeedbackSettings(lag_interval_s=0.1)) as server:
        yield server


@pytest.fixture(scope="module")
def keys(secured: tuple[LiveServer, str]) -> dict[str, str]:
    server, _ = secured
    return {
        "a": create_key(server, "tenant-a")["key"],
        "a2": create_key(server, "tenant-a")["key"],
        "a_scrubbed": create_key(server, "tenant-a", retention="scrubbed")["key"],
        "a_off": create_key(server, "tenant-a", retention="off")["key"],
        "b": create_key(server, "tenant-b")["key"],
        "a_admin": create_key(server, "tenant-a", role="admin")["key"],
    }


def api(server: LiveServer, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def complete(server: LiveServer, key: str, text: str = "hi", user: str | None = None) -> str:
    client = openai.OpenAI(base_url=server.v1, api_key=key, max_retries=0)
    extra: dict[str, Any] = {"user": user} if user else {}
    answer = client.chat.completions.create(
        model=TINY, messages=[{"role": "user", "content": text}], max_tokens=3, **extra
    )
    return str(answer.id)


def shared() -> Any:
    """A client of the shared Redis (bytes in and out; typed loosely, as redis-py's own stubs are)."""
    return redis.Redis.from_url(SHARED_URL)


def record_of(prefix: str, tenant: str, response_id: str) -> dict[str, Any] | None:
    raw = shared().get(layout.response_key(prefix, tenant, response_id))
    return orjson.loads(raw) if raw else None


def owned(prefix: str, response_id: str) -> bool:
    """The response's owner marker is written (with the record, after the answer)."""
    return bool(shared().exists(layout.owner_key(prefix, response_id)))


def served(server: LiveServer, prefix: str, key: str, **kw: Any) -> str:
    response_id = complete(server, key, **kw)
    wait_until(lambda: owned(prefix, response_id), what="the response record")
    return response_id


def test_a_rated_answer_is_stored_with_its_record(secured: tuple[LiveServer, str], keys: dict[str, str]) -> None:
    server, prefix = secured
    response_id = served(server, prefix, keys["a"])
    assert response_id.startswith("chatcmpl-")
    record = record_of(prefix, "tenant-a", response_id)
    assert record is not None and record["model"] == TINY and record["retention"] == "metadata"
    assert record["completion_tokens"] > 0 and record["prompt_tokens"] > 0 and record["messages"] is None
    assert record["checkpoint_sha256"] and len(record["checkpoint_sha256"]) == 64
    with api(server, keys["a"]) as c:
        created = c.post(
            "/v1/feedback", json={"response_id": response_id, "rating": 4, "categories": ["inaccurate", "other"]}
        )
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["object"] == "feedback" and body["id"].startswith("fb-") and body["record_kept"] is True
        assert body["rating"] == 4 and body["categories"] == ["inaccurate", "other"] and "user_hash" not in body
        assert c.get(f"/v1/feedback/{body['id']}").json() == body
        listed = c.get("/v1/feedback", params={"response_id": response_id}).json()
        assert listed["object"] == "list" and [f["id"] for f in listed["data"]] == [body["id"]]
    entries = shared().xrange(layout.stream_key(prefix, "tenant-a"))
    assert body["id"] in {e[1][b"id"].decode() for e in entries if e[1][b"op"] == b"add"}
    assert b"tenant-a" in shared().smembers(layout.tenants_key(prefix))
    # not exported yet: the export lag gauge counts it
    lag = "guardserve_feedback_export_lag{}"
    wait_until(lambda: scrape(f"{server.url}/metrics").get(lag, 0) >= 1, what="the export lag gauge counting it")


def test_idempotent_per_key_and_response_and_per_idempotency_key(
    secured: tuple[LiveServer, str], keys: dict[str, str]
) -> None:
    server, prefix = secured
    response_id = served(server, prefix, keys["a"])
    with api(server, keys["a"]) as c:
        first = c.post("/v1/feedback", json={"response_id": response_id, "rating": "up"})
        again = c.post("/v1/feedback", json={"response_id": response_id, "rating": "down"})
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    with api(server, keys["a2"]) as c:  # another key of the tenant rates it on its own
        other = c.post("/v1/feedback", json={"response_id": response_id, "rating": "down"})
        assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    # an Idempotency-Key replays the same 201 body even for a retry of a first attempt
    second = served(server, prefix, keys["a"])
    with api(server, keys["a"]) as c:
        headers = {"Idempotency-Key": "retry-1"}
        one = c.post("/v1/feedback", json={"response_id": second, "rating": 2}, headers=headers)
        two = c.post("/v1/feedback", json={"response_id": second, "rating": 2}, headers=headers)
        assert one.status_code == two.status_code == 201 and one.json() == two.json()
        assert len(c.get("/v1/feedback", params={"response_id": response_id}).json()["data"]) == 2
    stream = shared().xrange(layout.stream_key(prefix, "tenant-a"))
    ids = [e[1][b"id"].decode() for e in stream if e[1][b"op"] == b"add"]
    assert ids.count(first.json()["id"]) == 1 and ids.count(one.json()["id"]) == 1


def test_other_tenants_get_404_never_403(secured: tuple[LiveServer, str], keys: dict[str, str]) -> None:
    server, prefix = secured
    response_id = served(server, prefix, keys["a"])
    with api(server, keys["a"]) as c:
        mine = c.post("/v1/feedback", json={"response_id": response_id, "rating": "up"}).json()
    with api(server, keys["b"]) as c:
        rated = c.post("/v1/feedback", json={"response_id": response_id, "rating": "down"})
        never = c.post("/v1/feedback", json={"response_id": "chatcmpl-" + "0" * 32, "rating": "down"})
        assert rated.status_code == never.status_code == 404
        assert rated.json()["error"]["code"] == never.json()["error"]["code"] == "response_not_found"
        got = c.get(f"/v1/feedback/{mine['id']}")
        assert got.status_code == 404 and got.json()["error"]["code"] == "feedback_not_found"
        assert c.get("/v1/feedback", params={"response_id": response_id}).json()["data"] == []
        assert c.delete(f"/v1/feedback/{mine['id']}").status_code == 404
        assert c.delete(f"/v1/responses/{response_id}").status_code == 404
    with api(server, keys["a"]) as c:  # untouched
        assert c.get(f"/v1/feedback/{mine['id']}").status_code == 200
    assert record_of(prefix, "tenant-a", response_id) is not None


BAD_BODIES: list[tuple[Any, str | None]] = [
    ({"rating": "up"}, "response_id"),
    ({"response_id": "R", "rating": 0}, "rating"),
    ({"response_id": "R", "rating": 6}, "rating"),
    ({"response_id": "R", "rating": True}, "rating"),
    ({"response_id": "R", "rating": 3.5}, "rating"),
    ({"response_id": "R", "rating": "meh"}, "rating"),
    ({"response_id": "R"}, "rating"),
    ({"response_id": "R", "rating": "up", "categories": ["boring"]}, "categories.0"),
    ({"response_id": "R", "rating": "up", "categories": "harmful"}, "categories"),
    ({"response_id": "R", "rating": "up", "comment": "x" * 2001}, "comment"),
    ({"response_id": "R", "rating": "up", "comment": 5}, "comment"),
    ({"response_id": "R", "rating": "up", "mood": "bad"}, "mood"),
    ({"response_id": "has spaces", "rating": "up"}, "response_id"),
    ({"response_id": "R", "rating": "up", "user": "u" * 300}, "user"),
    ([1, 2], None),
]


def test_bad_input_matrix_is_400_in_openai_envelope(secured: tuple[LiveServer, str], keys: dict[str, str]) -> None:
    server, prefix = secured
    response_id = served(server, prefix, keys["a"])
    with api(server, keys["a"]) as c:
        for body, param in BAD_BODIES:
            if isinstance(body, dict) and body.get("response_id") == "R":
                body = {**body, "response_id": response_id}
            response = c.post("/v1/feedback", json=body)
            assert response.status_code == 400, (body, response.text)
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error" and error["message"] and error["param"] == param, body
        raw = c.post("/v1/feedback", content=b"{not json")
        assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_json"
        bad_key = c.post(
            "/v1/feedback", json={"response_id": response_id, "rating": "up"}, headers={"Idempotency-Key": "a b"}
        )
        assert bad_key.status_code == 400 and bad_key.json()["error"]["code"] == "invalid_idempotency_key"
        listing = c.get("/v1/feedback")
        assert listing.status_code == 400 and listing.json()["error"]["param"] == "response_id"
        assert c.get("/v1/feedback/fb-nope").status_code == 404
    # none of them stored anything
    assert c.get is not None and not shared().exists(layout.by_response_key(prefix, "tenant-a", response_id))


def test_retention_off_keeps_no_record_and_feedback_says_so(
    secured: tuple[LiveServer, str], keys: dict[str, str]
) -> None:
    server, prefix = secured
    response_id = served(server, prefix, keys["a_off"])
    assert record_of(prefix, "tenant-a", response_id) is None
    with api(server, keys["a"]) as c:  # any key of the owner's tenant may rate it
        body = c.post("/v1/feedback", json={"response_id": response_id, "rating": "down"}).json()
    assert body["record_kept"] is False and "metadata only" in body["note"]
    with api(server, keys["b"]) as c:
        assert c.post("/v1/feedback", json={"response_id": response_id, "rating": "up"}).status_code == 404


def _everything_under(prefix: str) -> bytes:
    """Every key, value, set member, hash field and stream entry under the prefix, as one blob."""
    client = shared()
    parts: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        parts.append(key)
        kind = client.type(key)
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"set":
            parts.extend(client.smembers(key))
        elif kind == b"stream":
            for _, fields in client.xrange(key):
                parts.extend(k + b"=" + v for k, v in fields.items())
        elif kind == b"hash":
            parts.extend(k + b"=" + v for k, v in client.hgetall(key).items())
        elif kind == b"zset":
            parts.extend(client.zrange(key, 0, -1))
        elif kind == b"list":
            parts.extend(client.lrange(key, 0, -1))
    return b"\n".join(parts)


def test_pii_never_raw_in_redis_logs_or_audit_lines(
    secured: tuple[LiveServer, str],
    keys: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    server, prefix = secured
    caplog.set_level(logging.DEBUG)
    response_id = served(server, prefix, keys["a_scrubbed"], text=f"My details: {PII_TEXT}", user="jane@corp")
    wait_until(lambda: record_of(prefix, "tenant-a", response_id) is not None, what="the scrubbed record")
    record = record_of(prefix, "tenant-a", response_id)
    assert record is not None and record["retention"] == "scrubbed"
    assert "<EMAIL_ADDRESS>" in record["messages"][-1]["content"] and record["answer"] is not None
    with api(server, keys["a_scrubbed"]) as c:
        body = c.post(
            "/v1/feedback",
            json={
                "response_id": response_id,
                "rating": "down",
                "categories": ["pii_leak"],
                "comment": f"It leaked: {PII_TEXT}",
                "preferred": f"Never repeat {PII['email']} or {PII['card']}.",
                "user": "jane@corp",
            },
        ).json()
    assert "<EMAIL_ADDRESS>" in body["comment"] and "<CREDIT_CARD>" in body["preferred"]
    assert "<IBAN_CODE>" in body["comment"] and "<PHONE_NUMBER>" in body["comment"]
    blob = _everything_under(prefix)
    err = capfd.readouterr().err
    audit = [orjson.loads(line) for line in err.splitlines() if line.startswith('{"ts"') and '"route"' in line]
    routes = {(a["route"], a["status"]) for a in audit}
    assert ("/v1/chat/completions", 200) in routes and ("/v1/feedback", 201) in routes
    completion = next(a for a in audit if a["response_id"] == response_id)
    assert completion["tenant"] == "tenant-a" and completion["key_id"] and completion["checkpoint"]
    assert any(g["guard"] == "pii" for g in completion["guards"]) or completion["guards"] == []
    for value in [*PII.values(), "jane@corp"]:
        assert value.encode() not in blob, value
        assert value not in caplog.text and value not in err, value


def test_erasure_by_feedback_response_and_user(secured: tuple[LiveServer, str], keys: dict[str, str]) -> None:
    server, prefix = secured
    client = shared()
    tomb = layout.tombstones_key(prefix, "tenant-a")
    r1 = served(server, prefix, keys["a"])
    with api(server, keys["a"]) as c:
        f1 = c.post("/v1/feedback", json={"response_id": r1, "rating": "up"}).json()["id"]
        assert c.delete(f"/v1/feedback/{f1}").json() == {"id": f1, "object": "feedback.deleted", "deleted": True}
        assert c.get(f"/v1/feedback/{f1}").status_code == 404 and c.delete(f"/v1/feedback/{f1}").status_code == 404
        assert client.sismember(tomb, f"fb:{f1}")
        again = c.post("/v1/feedback", json={"response_id": r1, "rating": "down"}).json()  # may rate again
        assert again["id"] != f1
        erased = c.delete(f"/v1/responses/{r1}")
        assert erased.status_code == 200 and erased.json()["erased"] == 2  # the record and the new feedback
        assert record_of(prefix, "tenant-a", r1) is None and c.get(f"/v1/feedback/{again['id']}").status_code == 404
        assert client.sismember(tomb, f"resp:{r1}") and client.sismember(tomb, f"fb:{again['id']}")
    # by user: every record and feedback of one OpenAI `user`, nobody else's
    mine = [served(server, prefix, keys["a"], user="erase-me") for _ in range(2)]
    other = served(server, prefix, keys["a"], user="keep-me")
    with api(server, keys["a2"]) as c:
        fb_mine = c.post("/v1/feedback", json={"response_id": other, "rating": 1, "user": "erase-me"}).json()["id"]
        fb_other = c.post("/v1/feedback", json={"response_id": mine[0], "rating": 5}).json()["id"]
    with api(server, keys["a"]) as c:
        fb_keep = c.post("/v1/feedback", json={"response_id": other, "rating": 5, "user": "keep-me"})
    with api(server, keys["a"]) as c:
        assert c.post("/admin/erasure", json={"user": "erase-me"}).status_code == 403  # admin only
    with api(server, keys["a_admin"]) as c:
        done = c.post("/admin/erasure", json={"user": "erase-me"})
        assert done.status_code == 200 and done.json()["erased"] == 4, done.text  # 2 records + 2 feedbacks
        assert c.post("/admin/erasure", json={"user": "erase-me", "tenant": "tenant-b"}).status_code == 404
        assert c.post("/admin/erasure", json={}).status_code == 400
    assert all(record_of(prefix, "tenant-a", r) is None for r in mine)
    assert record_of(prefix, "tenant-a", other) is not None
    with api(server, keys["a2"]) as c:
        assert c.get(f"/v1/feedback/{fb_mine}").status_code == 404
        assert c.get(f"/v1/feedback/{fb_other}").status_code == 404  # it rated an erased response
        assert c.get(f"/v1/feedback/{fb_keep.json()['id']}").status_code == 200
    erase_entries = [
        orjson.loads(f[b"ids"]) for _, f in client.xrange(layout.stream_key(prefix, "tenant-a")) if f[b"op"] == b"erase"
    ]
    assert any(f"fb:{fb_mine}" in ids for ids in erase_entries)
    with admin(server) as a:  # the bootstrap admin names the tenant
        assert a.post("/admin/erasure", json={"user": "keep-me", "tenant": "tenant-a"}).json()["erased"] == 2
