"""Feedback test data written exactly as ``app/feedback/layout.py`` lays it out (what the gateway's store writes):
an XADD ``op=add`` + ``record`` per feedback on the tenant stream, the response record JSON at its key, the tenant
in the tenants set; erasure as a tombstone plus an ``op=erase`` entry. Swap for the real store once it exists."""

from __future__ import annotations

import itertools
import json

import redis

from guardserve.app.feedback import layout
from guardserve.app.feedback.model import FeedbackRecord, Message, Rating, ResponseRecord

_ids = itertools.count(1)


def response(
    tenant: str, prompt: str | None = "What is 2 + 2?", answer: str = "4", *, checkpoint: str | None = "ab" * 32
) -> ResponseRecord:
    """A response record; with a ``prompt`` it is kept ``scrubbed`` (prompt and answer), else metadata only."""
    n = next(_ids)
    if prompt is None:
        return ResponseRecord(
            id=f"chatcmpl-{n}", tenant=tenant, key_id="k1", model="micro", checkpoint_sha256=checkpoint
        )
    return ResponseRecord(
        id=f"chatcmpl-{n}",
        tenant=tenant,
        key_id="k1",
        model="micro",
        checkpoint_sha256=checkpoint,
        retention="scrubbed",
        messages=(Message(role="user", content=prompt),),
        answer=answer,
    )


def feedback(record: ResponseRecord, rating: Rating, **fields: object) -> FeedbackRecord:
    values: dict[str, object] = {
        "id": f"fb-{next(_ids)}",
        "response_id": record.id,
        "tenant": record.tenant,
        "key_id": record.key_id,
        "rating": rating,
    }
    return FeedbackRecord.model_validate({**values, **fields})


def put_response(client: redis.Redis, prefix: str, record: ResponseRecord) -> None:
    client.set(layout.response_key(prefix, record.tenant, record.id), layout.dump(record))


def add_feedback(client: redis.Redis, prefix: str, record: FeedbackRecord) -> None:
    pipe = client.pipeline(transaction=True)
    pipe.xadd(layout.stream_key(prefix, record.tenant), {"op": "add", "record": layout.dump(record)})
    pipe.set(layout.feedback_key(prefix, record.tenant, record.id), layout.dump(record))
    pipe.sadd(layout.tenants_key(prefix), record.tenant)
    pipe.execute()


def erase(client: redis.Redis, prefix: str, tenant: str, *members: str) -> None:
    """Erase ``fb:{id}`` / ``resp:{id}`` members: tombstones, records deleted, an ``op=erase`` stream entry."""
    pipe = client.pipeline(transaction=True)
    pipe.sadd(layout.tombstones_key(prefix, tenant), *members)
    for member in members:
        kind, _, ident = member.partition(":")
        key = layout.feedback_key if kind == "fb" else layout.response_key
        pipe.delete(key(prefix, tenant, ident))
    pipe.xadd(layout.stream_key(prefix, tenant), {"op": "erase", "record": json.dumps({"ids": list(members)})})
    pipe.execute()
