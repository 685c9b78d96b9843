"""Where response records and feedback live: the :class:`FeedbackStore` protocol, in Redis
(:class:`RedisFeedbackStore`, the production store, layout in :mod:`guardserve.app.feedback.layout`) or in a local
append-only file (:class:`guardserve.app.feedback.filestore.FileFeedbackStore`, dev mode without Redis).

Durability: :meth:`FeedbackStore.add_feedback` returns only once the feedback is in the tenant's Stream (Redis:
one Lua script, so the XADD, the record and its indexes are applied together or not at all, and AOF logs them as
one unit; with ``replicas_ack`` > 0, also after ``WAIT`` saw that many replicas take it). Anything else raises
:class:`FeedbackUnavailableError`: the caller answers 503 and the client retries; nothing is buffered in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from guardserve.app.feedback import layout
from guardserve.app.feedback.model import FeedbackRecord, ResponseRecord
from guardserve.app.store.backend import BackendUnavailableError, RedisBackend
from guardserve.app.store.coalesce import Coalescer

log = logging.getLogger(__name__)

IDEMPOTENCY_TTL_MS = 86_400_000


class FeedbackUnavailableError(Exception):
    """The store could not make a feedback durable (or read one) right now: 503, retry later."""


class FeedbackStore(Protocol):
    async def start(self) -> None: ...

    async def put_response(self, record: ResponseRecord, ttl_ms: int, owner_ttl_ms: int) -> None:
        """Remember who got response ``record.id``; keep the record itself unless its retention is ``off``."""
        ...

    async def get_response(self, tenant: str, response_id: str) -> ResponseRecord | None: ...

    async def owner(self, response_id: str) -> str | None:
        """The tenant that got this response, while remembered."""
        ...

    async def add_feedback(self, record: FeedbackRecord, idempotency_key: str | None) -> tuple[FeedbackRecord, bool]:
        """Store ``record`` durably, unless this key already rated the response or the Idempotency-Key was seen:
        then the stored one. Returns (the record, whether it is a replay)."""
        ...

    async def get_feedback(self, tenant: str, feedback_id: str) -> FeedbackRecord | None: ...

    async def list_feedback(self, tenant: str, response_id: str) -> list[FeedbackRecord]: ...

    async def delete_feedback(self, tenant: str, feedback_id: str) -> bool:
        """Delete one feedback and tombstone it; False if there was none."""
        ...

    async def erase_response(self, tenant: str, response_id: str) -> int:
        """Delete a response's record and every feedback on it, tombstoned; how many items went."""
        ...

    async def erase_user(self, tenant: str, user_hash: str) -> int:
        """Everything of one OpenAI ``user`` (by its keyed hash): their responses (with the feedback on them) and
        their feedback; how many items went."""
        ...

    async def export_lag(self) -> int | None:
        """Entries of the tenants' feedback streams the export has not read yet (None: this store cannot tell)."""
        ...

    async def aclose(self) -> None: ...


# KEYS: once, idempotency (or once again), stream, record, by-response, tenants, user set (or once again)
# ARGV: id, record JSON, maxlen, idempotency TTL ms, has idempotency, tenant, has user, record key prefix
ADD_FEEDBACK = """
local existing = false
if ARGV[5] == '1' then existing = redis.call('GET', KEYS[2]) end
if not existing then existing = redis.call('GET', KEYS[1]) end
if existing then
  local stored = redis.call('GET', ARGV[8] .. existing)
  if stored then return {0, existing, stored} end
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*', 'op', 'add', 'id', ARGV[1], 'record', ARGV[2])
redis.call('SET', KEYS[4], ARGV[2])
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[5] == '1' then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4]) end
redis.call('SADD', KEYS[5], ARGV[1])
redis.call('SADD', KEYS[6], ARGV[6])
if ARGV[7] == '1' then redis.call('SADD', KEYS[7], 'fb:' .. ARGV[1]) end
return {1, ARGV[1], ARGV[2]}
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisFeedbackStore:
    """Raises :class:`FeedbackUnavailableError` when Redis fails (through :class:`RedisBackend`, which times out,
    bounds concurrent calls and opens its circuit breaker)."""

    def __init__(
        self,
        backend: RedisBackend,
        stream_maxlen: int = layout.STREAM_MAXLEN,
        replicas_ack: int = 0,
        replicas_timeout_ms: int = 1000,
    ) -> None:
        self.backend = backend
        self.p = backend.prefix
        self.stream_maxlen = stream_maxlen
        self.replicas_ack = replicas_ack
        self.replicas_timeout_ms = replicas_timeout_ms
        self._add = backend.client.register_script(ADD_FEEDBACK)
        self._responses: Coalescer[tuple[ResponseRecord, int, int]] = Coalescer(self._put_responses)

    async def _call(self, operation: Any) -> Any:
        try:
            return await self.backend.call(operation)
        except BackendUnavailableError as exc:
            raise FeedbackUnavailableError(str(exc)) from None

    async def start(self) -> None:
        return None

    async def put_response(self, record: ResponseRecord, ttl_ms: int, owner_ttl_ms: int) -> None:
        await self._responses.submit((record, ttl_ms, owner_ttl_ms))

    async def _put_responses(self, batch: Sequence[tuple[ResponseRecord, int, int]]) -> None:
        """One round trip for every record written at about the same time (see :class:`Coalescer`)."""
        p = self.p

        async def write(c: Any) -> Any:
            pipe = c.pipeline(transaction=True)
            for record, ttl_ms, owner_ttl_ms in batch:
                tenant = record.tenant
                pipe.set(layout.owner_key(p, record.id), tenant, px=max(ttl_ms, owner_ttl_ms))
                if record.retention != "off":
                    pipe.set(layout.response_key(p, tenant, record.id), layout.dump(record), px=ttl_ms)
                    if record.user_hash:
                        pipe.sadd(layout.user_key(p, tenant, record.user_hash), f"resp:{record.id}")
            return await pipe.execute()

        await self._call(write)

    async def get_response(self, tenant: str, response_id: str) -> ResponseRecord | None:
        raw = await self._call(lambda c: c.get(layout.response_key(self.p, tenant, response_id)))
        if not raw:
            return None
        try:
            return layout.load_response(raw)
        except ValidationError:
            log.warning("response record %s is unreadable; treated as absent", response_id)
            return None

    async def owner(self, response_id: str) -> str | None:
        raw = await self._call(lambda c: c.get(layout.owner_key(self.p, response_id)))
        return _text(raw) if raw else None

    async def add_feedback(self, record: FeedbackRecord, idempotency_key: str | None) -> tuple[FeedbackRecord, bool]:
        p, t = self.p, record.tenant
        once = layout.once_key(p, t, record.response_id, record.key_id)
        keys = [
            once,
            layout.idempotency_key(p, t, record.key_id, idempotency_key) if idempotency_key else once,
            layout.stream_key(p, t),
            layout.feedback_key(p, t, record.id),
            layout.by_response_key(p, t, record.response_id),
            layout.tenants_key(p),
            layout.user_key(p, t, record.user_hash) if record.user_hash else once,
        ]
        args: list[bytes | str | int] = [
            record.id,
            layout.dump(record),
            self.stream_maxlen,
            IDEMPOTENCY_TTL_MS,
            "1" if idempotency_key else "0",
            t,
            "1" if record.user_hash else "0",
            layout.feedback_key(p, t, ""),
        ]
        created, _, stored = await self._call(lambda c: self._add(keys=keys, args=args, client=c))
        if int(created) and self.replicas_ack > 0:
            acked = await self._call(lambda c: c.wait(self.replicas_ack, self.replicas_timeout_ms))
            if int(acked) < self.replicas_ack:
                # Stored on the primary; a retry with the same Idempotency-Key (or key and response) replays it.
                raise FeedbackUnavailableError(f"{acked} of {self.replicas_ack} replicas acknowledged in time")
        return layout.load_feedback(stored), not int(created)

    async def get_feedback(self, tenant: str, feedback_id: str) -> FeedbackRecord | None:
        raw = await self._call(lambda c: c.get(layout.feedback_key(self.p, tenant, feedback_id)))
        return layout.load_feedback(raw) if raw else None

    async def list_feedback(self, tenant: str, response_id: str) -> list[FeedbackRecord]:
        ids = await self._call(lambda c: c.smembers(layout.by_response_key(self.p, tenant, response_id)))
        records = [await self.get_feedback(tenant, _text(i)) for i in sorted(ids)]
        return sorted((r for r in records if r is not None), key=lambda r: (r.created, r.id))

    async def _erase(
        self, tenant: str, feedbacks: Sequence[FeedbackRecord], responses: Sequence[str], extra: Sequence[str] = ()
    ) -> None:
        """Delete these records and their indexes, tombstone them, and tell the exporters (one transaction)."""
        p = self.p
        members = [f"fb:{f.id}" for f in feedbacks] + [f"resp:{r}" for r in responses]
        if not members and not extra:
            return

        async def erase(c: Any) -> Any:
            pipe = c.pipeline(transaction=True)
            for f in feedbacks:
                pipe.delete(layout.feedback_key(p, tenant, f.id), layout.once_key(p, tenant, f.response_id, f.key_id))
                pipe.srem(layout.by_response_key(p, tenant, f.response_id), f.id)
                if f.user_hash:
                    pipe.srem(layout.user_key(p, tenant, f.user_hash), f"fb:{f.id}")
            for r in responses:
                pipe.delete(layout.response_key(p, tenant, r), layout.by_response_key(p, tenant, r))
            for key in extra:
                pipe.delete(key)
            if members:
                pipe.sadd(layout.tombstones_key(p, tenant), *members)
                pipe.xadd(
                    layout.stream_key(p, tenant),
                    {"op": "erase", "ids": orjson.dumps(members)},
                    maxlen=self.stream_maxlen,
                    approximate=True,
                )
                pipe.sadd(layout.tenants_key(p), tenant)
            return await pipe.execute()

        await self._call(erase)

    async def delete_feedback(self, tenant: str, feedback_id: str) -> bool:
        record = await self.get_feedback(tenant, feedback_id)
        if record is None:
            return False
        await self._erase(tenant, [record], [])
        return True

    async def erase_response(self, tenant: str, response_id: str) -> int:
        response = await self.get_response(tenant, response_id)
        feedbacks = await self.list_feedback(tenant, response_id)
        if response is None and not feedbacks:
            return 0
        if response is not None and response.user_hash:
            user_set = layout.user_key(self.p, tenant, response.user_hash)
            await self._call(lambda c: c.srem(user_set, f"resp:{response_id}"))
        await self._erase(tenant, feedbacks, [response_id])
        return len(feedbacks) + (response is not None)

    async def erase_user(self, tenant: str, user_hash: str) -> int:
        key = layout.user_key(self.p, tenant, user_hash)
        # responses first (with the feedback on them), then the user's remaining feedback: nothing counted twice
        members = sorted(
            (_text(m) for m in await self._call(lambda c: c.smembers(key))), key=lambda m: (m[:3] != "res", m)
        )
        erased = 0
        feedbacks = []
        for member in members:
            kind, _, item = member.partition(":")
            if kind == "resp":
                erased += await self.erase_response(tenant, item)
            elif kind == "fb":
                record = await self.get_feedback(tenant, item)
                if record is not None:
                    feedbacks.append(record)
        await self._erase(tenant, feedbacks, [], [key])
        return erased + len(feedbacks)

    async def export_lag(self) -> int | None:
        """Per tenant stream: the export group's ``lag`` (Redis >= 7), or the stream's length before a first export."""

        async def lag(c: Any) -> int:
            total = 0
            for tenant in sorted(_text(t) for t in await c.smembers(layout.tenants_key(self.p))):
                stream = layout.stream_key(self.p, tenant)
                groups = await c.xinfo_groups(stream) if await c.exists(stream) else []
                group = next((g for g in groups if _text(g.get("name")) == layout.EXPORT_GROUP), None)
                if group is None:
                    total += int(await c.xlen(stream))
                elif group.get("lag") is not None:
                    total += int(group["lag"])
            return total

        return int(await self._call(lag))

    async def aclose(self) -> None:
        return None
