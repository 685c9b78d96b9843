"""Redis first; when Redis fails, the configured failure mode.

``fail_open``: decide with the per-process :class:`MemoryLimiter`, whose limits are divided by the number of
gateway processes (so the fleet stays within the limit while each process counts alone), and flag the decision
degraded. ``fail_closed``: let :class:`BackendUnavailableError` through (the admission answers 503). The
:class:`RedisBackend` circuit breaker makes either answer immediate while Redis is down, and its half-open probe
brings Redis back within ``breaker_reset_ms`` of its return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

from guardserve.app.limits.memory import MemoryLimiter
from guardserve.app.limits.model import Ask, Decision, Lease, Usage
from guardserve.app.limits.redis_limiter import RedisLimiter
from guardserve.app.store.backend import BackendUnavailableError


class ResilientLimiter:
    name = "resilient"

    def __init__(self, primary: RedisLimiter, fallback: MemoryLimiter, fail_open: bool) -> None:
        self.primary = primary
        self.fallback = fallback
        self.fail_open = fail_open

    @property
    def degraded(self) -> bool:
        return self.primary.degraded

    async def start(self) -> None:
        await self.primary.start()

    async def aclose(self) -> None:
        await self.primary.aclose()

    async def acquire(self, ask: Ask) -> Decision:
        try:
            return await self.primary.acquire(ask)
        except BackendUnavailableError:
            if not self.fail_open:
                raise
        return replace(await self.fallback.acquire(ask), degraded=True)

    async def usage(self, tenant: str, scopes: Sequence[tuple[Literal["key", "tenant"], str]]) -> list[Usage]:
        """Redis' count; while Redis is down in fail_open, this process' own (a fraction of the fleet's)."""
        try:
            return await self.primary.usage(tenant, scopes)
        except BackendUnavailableError:
            if not self.fail_open:
                raise
        return await self.fallback.usage(tenant, scopes)

    async def release(self, lease: Lease, used_tokens: int) -> None:
        target = self.primary if lease.backend == self.primary.name else self.fallback
        await target.release(lease, used_tokens)
