"""What a limiter is asked and what it answers; the :class:`RateLimiter` protocol.

An admission (:class:`Ask`) names its scopes (the key, then its tenant), each with its limits, and the tokens to
reserve. The limiter admits it against every limit of every scope at once, or not at all, and reports each
scope's usage (:class:`ScopeUsage`) for the ``x-ratelimit-*`` headers. An admitted request holds a
:class:`Lease` until it is settled with the tokens it really used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from guardserve.app.limits.settings import Limits

LimitName = Literal["requests", "tokens", "concurrent", "tokens_per_day"]
WINDOW_MS = 60_000  # requests/min and tokens/min share one sliding minute


@dataclass(frozen=True)
class Scope:
    kind: Literal["key", "tenant"]
    id: str  # key id or tenant name (never a raw key)
    limits: Limits


@dataclass(frozen=True)
class Ask:
    lease_id: str  # unique per request
    tenant: str  # every scope lives under the tenant (one Redis Cluster slot)
    scopes: tuple[Scope, ...]
    tokens: int  # reservation: prompt tokens + max_tokens


@dataclass(frozen=True)
class ScopeUsage:
    """A scope's minute window after the decision."""

    requests: int  # requests counted in the last minute
    tokens: int  # tokens counted in the last minute
    reset_ms: int  # until the oldest counted request leaves the window (capacity starts coming back)


@dataclass(frozen=True)
class Usage:
    """What a scope has used, as its limiter counts it (a dimension without a limit is not counted: 0)."""

    requests: int  # requests admitted in the last minute
    tokens: int  # tokens counted in the last minute (reservations until settled, then what was used)
    concurrent: int  # concurrency slots held now
    tokens_today: int  # tokens counted this UTC day


@dataclass(frozen=True)
class Lease:
    ask: Ask
    backend: str  # which limiter holds it ("redis" or "local")
    day: str = ""  # UTC day the tokens/day reservation was counted in


@dataclass(frozen=True)
class Decision:
    allowed: bool
    usage: tuple[ScopeUsage, ...]  # one per scope of the ask
    lease: Lease | None = None  # set when allowed
    refused_scope: int = -1  # index of the scope that refused
    refused_limit: LimitName | None = None
    retry_after_ms: int = 0
    too_large: bool = False  # the ask can never fit this limit (more tokens than the limit)
    degraded: bool = False  # decided by the per-process fallback, not by Redis


class RateLimiter(Protocol):
    async def acquire(self, ask: Ask) -> Decision:
        """Admit against every limit at once (and reserve) or refuse. Raises BackendUnavailableError."""
        ...

    async def release(self, lease: Lease, used_tokens: int) -> None:
        """Settle: free the concurrency slot and replace the reservation with the tokens used. Never raises."""
        ...

    async def usage(self, tenant: str, scopes: Sequence[tuple[Literal["key", "tenant"], str]]) -> list[Usage]:
        """What each ``(kind, id)`` scope of ``tenant`` has used now; read-only. Raises BackendUnavailableError."""
        ...

    @property
    def degraded(self) -> bool: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...
