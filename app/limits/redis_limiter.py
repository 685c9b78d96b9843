"""The limiter shared by every replica: one Lua script (one round trip) per admission.

See :mod:`app.limits.lua` for the algorithm. Settlements are not urgent: those that end while one is on its way
to Redis wait and go together in one pipeline (one round trip for many requests under load). Concurrency slots
are leases: each admitted request's slot expires ``lease_seconds`` after its last renewal, and a background task
renews the slots of this process' running requests every third of that, so a crashed gateway's slots come back
on their own and a long stream keeps its.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from guardserve.app.limits.lua import ADMIT, RENEW, SETTLE, USAGE
from guardserve.app.limits.model import WINDOW_MS, Ask, Decision, Lease, LimitName, Scope, ScopeUsage, Usage
from guardserve.app.limits.settings import Limits
from guardserve.app.store.backend import BackendUnavailableError, RedisBackend

Unsettled = tuple[float, list[str], list[Any]]  # (released at, monotonic; the settle script's keys and args)
_MAX_UNSETTLED = 10_000

log = logging.getLogger(__name__)

KINDS: dict[int, LimitName] = {1: "requests", 2: "tokens", 3: "concurrent", 4: "tokens_per_day"}
DAY_TTL_S = 2 * 86_400


def utc_day(now: float | None = None) -> tuple[str, int]:
    """Today's UTC date (YYYYMMDD) and the milliseconds until it ends."""
    now = time.time() if now is None else now
    day = time.strftime("%Y%m%d", time.gmtime(now))
    return day, int((86_400 - now % 86_400) * 1000)


def scope_keys(prefix: str, tenant: str, scope: Scope, day: str) -> list[str]:
    base = f"{prefix}{{{tenant}}}:" + ("t" if scope.kind == "tenant" else f"k:{scope.id}")
    return [f"{base}:w", f"{base}:s", f"{base}:c", f"{base}:d:{day}"]


def _keys(prefix: str, ask: Ask, day: str) -> list[str]:
    return [key for scope in ask.scopes for key in scope_keys(prefix, ask.tenant, scope, day)]


def _limit_args(scope: Scope) -> list[int]:
    lim = scope.limits
    return [lim.requests_per_minute or 0, lim.tokens_per_minute or 0, lim.concurrent or 0, lim.tokens_per_day or 0]


class RedisLimiter:
    name = "redis"

    def __init__(self, backend: RedisBackend, lease_seconds: float) -> None:
        self.backend = backend
        self.lease_ms = int(lease_seconds * 1000)
        client: Any = backend.client
        self._admit = client.register_script(ADMIT)
        self._settle = client.register_script(SETTLE)
        self._renew = client.register_script(RENEW)
        self._usage = client.register_script(USAGE)
        self._active: dict[str, Lease] = {}  # this process' leases holding a concurrency slot
        self._renewer: asyncio.Task[None] | None = None
        self._batchable = not isinstance(backend.client, RedisCluster)  # cluster: one call per settlement
        self._settling: list[tuple[list[str], list[Any], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        # settlements Redis did not take (unreachable, queue full): retried until they land or age out
        self._unsettled: list[Unsettled] = []
        self._retrier: asyncio.Task[None] | None = None

    @property
    def degraded(self) -> bool:
        return self.backend.degraded

    @property
    def active(self) -> int:
        return len(self._active)

    @property
    def unsettled(self) -> int:
        """Released requests whose slot and refund Redis has not taken yet (they are being retried)."""
        return len(self._unsettled)

    async def start(self) -> None:
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_forever(), name="limits-lease-renewer")

    async def aclose(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher
        if self._retrier is not None:
            self._retrier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrier
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None

    async def acquire(self, ask: Ask) -> Decision:
        day, day_reset_ms = utc_day()
        keys = _keys(self.backend.prefix, ask, day)
        args: list[Any] = [ask.lease_id, ask.tokens, WINDOW_MS, self.lease_ms, DAY_TTL_S, day_reset_ms]
        for scope in ask.scopes:
            args += _limit_args(scope)
        raw = await self.backend.call(lambda client: self._admit(keys=keys, args=args, client=client))
        out = [int(v) for v in raw]
        usage = tuple(ScopeUsage(*out[5 + 3 * i : 8 + 3 * i]) for i in range(len(ask.scopes)))
        if not out[0]:
            return Decision(
                allowed=False,
                usage=usage,
                refused_scope=out[1] - 1,
                refused_limit=KINDS[out[2]],
                retry_after_ms=out[3],
                too_large=bool(out[4]),
            )
        lease = Lease(ask, self.name, day)
        if any(s.limits.concurrent for s in ask.scopes):
            self._active[ask.lease_id] = lease
        return Decision(allowed=True, usage=usage, lease=lease)

    async def usage(self, tenant: str, scopes: Sequence[tuple[Literal["key", "tenant"], str]]) -> list[Usage]:
        if not scopes:
            return []
        day = utc_day()[0]
        keys = [
            k for kind, id in scopes for k in scope_keys(self.backend.prefix, tenant, Scope(kind, id, Limits()), day)
        ]
        raw = await self.backend.call(lambda client: self._usage(keys=keys, args=[WINDOW_MS], client=client))
        out = [int(v) for v in raw]
        return [Usage(*out[4 * i : 4 * i + 4]) for i in range(len(scopes))]

    async def release(self, lease: Lease, used_tokens: int) -> None:
        ask = lease.ask
        self._active.pop(ask.lease_id, None)
        keys = _keys(self.backend.prefix, ask, lease.day)
        args: list[Any] = [ask.lease_id, ask.tokens, max(0, used_tokens), WINDOW_MS]
        flags = []
        for scope in ask.scopes:
            lim = scope.limits
            window = bool(lim.requests_per_minute or lim.tokens_per_minute)
            flags += [int(window), int(bool(lim.concurrent)), int(bool(lim.tokens_per_day))]
        changed = max(0, used_tokens) != ask.tokens
        if not any(f for i, f in enumerate(flags) if i % 3 == 1 or changed):
            return  # no slot to free, nothing to refund
        args += flags
        if not self._batchable:
            try:
                await self.backend.call(lambda client: self._settle(keys=keys, args=args, client=client))
            except BackendUnavailableError:  # logged by the backend; retried in the background
                self._keep([(time.monotonic(), keys, args)])
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._settling.append((keys, args, done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="limits-settle")
        await done

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # settlements finishing in this loop iteration join the first batch
            while self._settling:
                batch, self._settling = self._settling, []
                now = time.monotonic()
                await self._settle_or_keep([(now, keys, args) for keys, args, _ in batch])
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._flusher = None

    async def _settle_or_keep(self, entries: list[Unsettled]) -> None:
        landed: list[int] = []  # ids of the entries Redis took: never settled twice
        with contextlib.suppress(BackendUnavailableError):  # logged by the backend
            await self.backend.call(functools.partial(self._settle_batch, batch=entries, landed=landed))
        done = set(landed)
        failed = [entry for entry in entries if id(entry) not in done]
        if failed:
            self._keep(failed)

    async def _settle_batch(self, client: Any, batch: list[Unsettled], landed: list[int]) -> None:
        """One pipeline of EVALSHA calls; scripts Redis does not know (it restarted) are sent with their source.
        Each settlement Redis took is noted in ``landed``."""
        pipe = client.pipeline(transaction=False)
        for _, keys, args in batch:
            pipe.evalsha(self._settle.sha, len(keys), *keys, *args)
        results = await pipe.execute(raise_on_error=False)
        for entry, result in zip(batch, results, strict=True):
            if isinstance(result, NoScriptError):
                await self._settle(keys=entry[1], args=entry[2], client=client)
            elif isinstance(result, Exception):
                continue
            landed.append(id(entry))

    def _keep(self, entries: list[Unsettled]) -> None:
        """Retry these settlements in the background: a slot freed here must be freed in Redis too, not held until
        its lease expires (a burst of disconnects would otherwise hold a tenant's slots for the lease's length)."""
        self._unsettled = [*self._unsettled, *entries][-_MAX_UNSETTLED:]
        if self._retrier is None:
            self._retrier = asyncio.create_task(self._retry(), name="limits-settle-retry")

    async def _retry(self) -> None:
        delay = 0.2
        try:
            while self._unsettled:
                await asyncio.sleep(delay)
                cutoff = time.monotonic() - WINDOW_MS / 1000  # older: the window has let the reservation go anyway
                pending = [entry for entry in self._unsettled if entry[0] > cutoff]
                self._unsettled = []
                if pending:
                    await self._settle_or_keep(pending)
                delay = min(delay * 2, 5.0)
        finally:
            self._retrier = None

    async def renew(self) -> None:
        """Extend the concurrency slots of this process' running requests (one script call per request)."""
        prefix = self.backend.prefix

        async def one(lease: Lease) -> None:
            keys = [
                scope_keys(prefix, lease.ask.tenant, s, lease.day)[2] for s in lease.ask.scopes if s.limits.concurrent
            ]
            args = [lease.ask.lease_id, self.lease_ms]
            with contextlib.suppress(BackendUnavailableError):
                await self.backend.call(lambda client: self._renew(keys=keys, args=args, client=client))

        await asyncio.gather(*(one(lease) for lease in list(self._active.values())))

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            try:
                await self.renew()
            except Exception:
                log.exception("renewing concurrency leases failed")
