"""Where key records live: the :class:`KeyStore` protocol, in process memory (dev mode) or in Redis.

Redis layout (under the configured prefix): ``key:<id>`` holds the record as JSON, ``keys`` is the set of ids.
A stored record that no longer validates (written by an older version, or edited by hand) is treated as absent and
its id logged: it authenticates nobody, and listing the keys skips it instead of failing.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from pydantic import ValidationError

from guardserve.app.auth.records import KeyRecord
from guardserve.app.store.backend import RedisBackend

log = logging.getLogger(__name__)


class KeyStore(Protocol):
    async def add(self, record: KeyRecord) -> bool:
        """Store a new record; False if the id is taken."""
        ...

    async def get(self, key_id: str) -> KeyRecord | None: ...

    async def put(self, record: KeyRecord) -> None:
        """Replace an existing record (revocation, expiry changes)."""
        ...

    async def all(self) -> list[KeyRecord]: ...


class MemoryKeyStore:
    def __init__(self) -> None:
        self._records: dict[str, KeyRecord] = {}

    async def add(self, record: KeyRecord) -> bool:
        if record.id in self._records:
            return False
        self._records[record.id] = record
        return True

    async def get(self, key_id: str) -> KeyRecord | None:
        return self._records.get(key_id)

    async def put(self, record: KeyRecord) -> None:
        self._records[record.id] = record

    async def all(self) -> list[KeyRecord]:
        return list(self._records.values())


class RedisKeyStore:
    """Raises :class:`guardserve.app.store.backend.BackendUnavailableError` when Redis fails."""

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend
        self._index = f"{backend.prefix}keys"

    def _key(self, key_id: str) -> str:
        return f"{self.backend.prefix}key:{key_id}"

    async def add(self, record: KeyRecord) -> bool:
        data = record.model_dump_json()
        added = await self.backend.call(lambda c: c.set(self._key(record.id), data, nx=True))
        if added:
            await self.backend.call(lambda c: c.sadd(self._index, record.id))
        return bool(added)

    async def get(self, key_id: str) -> KeyRecord | None:
        raw = await self.backend.call(lambda c: c.get(self._key(key_id)))
        if not raw:
            return None
        try:
            return KeyRecord.model_validate_json(raw)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) or "(record)" for e in exc.errors())
            log.warning("key record %r in the store is unreadable (%s); treated as absent", key_id, fields)
            return None

    async def put(self, record: KeyRecord) -> None:
        data = record.model_dump_json()
        await self.backend.call(lambda c: c.set(self._key(record.id), data))

    async def all(self) -> list[KeyRecord]:
        ids: Any = await self.backend.call(lambda c: c.smembers(self._index))
        records = []
        for key_id in sorted(i.decode() if isinstance(i, bytes) else str(i) for i in ids):
            record = await self.get(key_id)
            if record is not None:
                records.append(record)
        return records
