"""Dev mode without Redis: feedback in a local append-only JSONL file, response records in memory.

Every feedback operation (``add``, ``erase``) is one line, written and ``fsync``'d (in a thread) before the call
returns, so an acknowledged feedback survives a crash of the gateway; the file is replayed at start-up. Response
records and their owners live in this process only (bounded, the oldest dropped; lost on restart): feedback on them
after a restart is stored as metadata only. One process only: several workers would each keep their own view.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import orjson

from guardserve.app.feedback import layout
from guardserve.app.feedback.model import FeedbackRecord, ResponseRecord
from guardserve.app.feedback.store import FeedbackUnavailableError

log = logging.getLogger(__name__)


class FileFeedbackStore:
    def __init__(self, path: Path, max_records: int = 10_000) -> None:
        self.path = path
        self.max_records = max_records
        self._responses: OrderedDict[tuple[str, str], tuple[ResponseRecord, float]] = OrderedDict()
        self._owners: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._feedback: dict[tuple[str, str], FeedbackRecord] = {}
        self._once: dict[tuple[str, str, str], str] = {}
        self._idem: dict[tuple[str, str, str], str] = {}
        self.tombstones: set[tuple[str, str]] = set()
        self._lock = asyncio.Lock()
        self._file: Any = None

    async def start(self) -> None:
        await asyncio.to_thread(self._open)
        log.warning(
            "DEV MODE: no GUARDSERVE_REDIS__URL, so feedback is appended to %s (fsync'd) and response records live "
            "in this process' memory (lost on restart). Set GUARDSERVE_REDIS__URL for anything but local "
            "development.",
            self.path,
        )

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            for line in self.path.read_bytes().splitlines():
                try:
                    self._apply(orjson.loads(line))
                except (orjson.JSONDecodeError, ValueError, KeyError):
                    log.warning("skipping an unreadable line of %s (a write cut short by a crash?)", self.path)
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open for appends, closed in aclose

    def _apply(self, op: dict[str, Any]) -> None:
        if op["op"] == "add":
            record = FeedbackRecord.model_validate(op["record"])
            self._feedback[(record.tenant, record.id)] = record
            self._once[(record.tenant, record.response_id, record.key_id)] = record.id
            if op.get("idem"):
                self._idem[(record.tenant, record.key_id, op["idem"])] = record.id
        elif op["op"] == "erase":
            tenant = op["tenant"]
            for member in op["ids"]:
                self.tombstones.add((tenant, member))
                kind, _, item = member.partition(":")
                if kind == "fb":
                    gone = self._feedback.pop((tenant, item), None)
                    if gone is not None:
                        self._once.pop((tenant, gone.response_id, gone.key_id), None)
                else:
                    self._responses.pop((tenant, item), None)

    def _append_sync(self, line: bytes) -> None:
        if self._file is None:
            raise OSError("the feedback file is not open")
        self._file.write(line + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    async def _append(self, op: dict[str, Any]) -> None:
        try:
            await asyncio.to_thread(self._append_sync, orjson.dumps(op))
        except OSError as exc:
            raise FeedbackUnavailableError(f"cannot append to {self.path}: {exc.strerror or exc}") from None
        self._apply(op)

    # --- responses (memory) ---------------------------------------------------------------------------------

    async def put_response(self, record: ResponseRecord, ttl_ms: int, owner_ttl_ms: int) -> None:
        now = time.monotonic()
        self._owners[record.id] = (record.tenant, now + max(ttl_ms, owner_ttl_ms) / 1000)
        if record.retention != "off":
            self._responses[(record.tenant, record.id)] = (record, now + ttl_ms / 1000)
        for table in (self._responses, self._owners):
            while len(table) > self.max_records:
                table.popitem(last=False)

    async def get_response(self, tenant: str, response_id: str) -> ResponseRecord | None:
        found = self._responses.get((tenant, response_id))
        return found[0] if found and found[1] > time.monotonic() else None

    async def owner(self, response_id: str) -> str | None:
        found = self._owners.get(response_id)
        return found[0] if found and found[1] > time.monotonic() else None

    # --- feedback (the file) --------------------------------------------------------------------------------

    async def add_feedback(self, record: FeedbackRecord, idempotency_key: str | None) -> tuple[FeedbackRecord, bool]:
        idem = layout.idempotency_key("", "", "", idempotency_key).rsplit(":", 1)[1] if idempotency_key else None
        t = record.tenant
        async with self._lock:
            existing = self._idem.get((t, record.key_id, idem)) if idem else None
            existing = existing or self._once.get((t, record.response_id, record.key_id))
            if existing and (t, existing) in self._feedback:
                return self._feedback[(t, existing)], True
            await self._append({"op": "add", "record": record.model_dump(mode="json"), "idem": idem})
        return record, False

    async def get_feedback(self, tenant: str, feedback_id: str) -> FeedbackRecord | None:
        return self._feedback.get((tenant, feedback_id))

    async def list_feedback(self, tenant: str, response_id: str) -> list[FeedbackRecord]:
        found = [f for (t, _), f in self._feedback.items() if t == tenant and f.response_id == response_id]
        return sorted(found, key=lambda r: (r.created, r.id))

    async def _erase(self, tenant: str, members: list[str]) -> None:
        if members:
            async with self._lock:
                await self._append({"op": "erase", "tenant": tenant, "ids": members})

    async def delete_feedback(self, tenant: str, feedback_id: str) -> bool:
        if (tenant, feedback_id) not in self._feedback:
            return False
        await self._erase(tenant, [f"fb:{feedback_id}"])
        return True

    async def erase_response(self, tenant: str, response_id: str) -> int:
        feedbacks = await self.list_feedback(tenant, response_id)
        kept = (tenant, response_id) in self._responses
        if not feedbacks and not kept:
            return 0
        await self._erase(tenant, [f"fb:{f.id}" for f in feedbacks] + [f"resp:{response_id}"])
        return len(feedbacks) + kept

    async def erase_user(self, tenant: str, user_hash: str) -> int:
        responses = [r.id for (t, _), (r, _) in self._responses.items() if t == tenant and r.user_hash == user_hash]
        erased = 0
        for response_id in responses:
            erased += await self.erase_response(tenant, response_id)
        mine = [f.id for (t, _), f in self._feedback.items() if t == tenant and f.user_hash == user_hash]
        await self._erase(tenant, [f"fb:{i}" for i in mine])
        return erased + len(mine)

    async def export_lag(self) -> int | None:
        return None  # dev mode: there is no export group to lag behind

    async def aclose(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
