"""Connection hygiene below the ASGI app: no pile of idle or slow sockets can take a worker down.

uvicorn keeps a connection that never sends a request open forever (its keep-alive timer starts only after a
response), has no deadline for request headers, and its ``limit_concurrency`` counts open connections, so a flood of
idle sockets turns every request, ``/health`` included, into a 503. :class:`GuardedHttpToolsProtocol` (uvicorn's
httptools protocol, which the gateway runs;
in app/guarded_protocol.py) adds, per worker, with the :class:`Ledger` here:

- a **header deadline**: from a connection's opening (or a kept-alive connection's next request's first byte) to the
  end of its request headers, else the socket is closed — idle and slow-header clients are dropped;
- a **per-client-IP cap on unauthenticated connections**: a connection counts against its IP until one of its
  requests presents a valid API key (the auth middleware calls :func:`mark_authenticated`); over the cap a new
  connection is closed at once. Behind a load balancer every client shares its IP: raise the cap there;
- a **cap on open connections** (below the process' file-descriptor limit): beyond it a new connection evicts
  the one that has waited longest for request headers, or is refused when none is idle;
- a **cap on requests in progress**: beyond it a request gets 503 in OpenAI's error envelope with ``Retry-After``;
  ``/health`` is exempt, so a saturated worker still says it is alive.

Bodies that stall are the ASGI layer's job (``GUARDSERVE_BODY_TIMEOUT``: 408). Limits are per worker.
"""

from __future__ import annotations

import resource
from collections import Counter
from typing import Protocol

from pydantic import BaseModel, Field
from starlette.types import Scope

STATE_KEY = "guardserve.connection"  # in each request's scope["state"]: the connection's ticket


class ConnectionSettings(BaseModel):
    """``GUARDSERVE_CONNECTIONS__*``: what one worker accepts."""

    header_timeout: float = Field(10.0, gt=0, le=600)  # seconds from opening (or a next request) to full headers
    keep_alive_timeout: float = Field(5.0, gt=0, le=600)  # idle seconds between requests on a kept-alive connection
    max_open: int | None = Field(None, ge=1)  # open connections; None: the fd limit less a reserve, at most 10,000
    max_unauthenticated_per_ip: int = Field(256, ge=1)  # open connections of one IP with no authenticated request
    max_requests: int = Field(1024, ge=1)  # requests in progress (beyond: 503); /health is exempt


def default_max_open() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    reserve = 256  # files, the upstream pool, Redis, logs
    return max(64, min(10_000, soft - reserve)) if soft != resource.RLIM_INFINITY else 10_000


class Ticket:
    """One connection's place in the :class:`Ledger`."""

    __slots__ = ("authenticated", "ip", "ledger")

    def __init__(self, ledger: Ledger, ip: str) -> None:
        self.ledger, self.ip, self.authenticated = ledger, ip, False

    def authenticate(self) -> None:
        if not self.authenticated:
            self.authenticated = True
            self.ledger.unauthenticated[self.ip] -= 1


class Idle(Protocol):
    """A connection waiting for request headers (its first request's or, kept alive, its next one's)."""

    def evict(self) -> None: ...


class Ledger:
    """Open connections of one worker: in all, unauthenticated per IP, and those idle, oldest first (an
    event-loop-only structure).

    At the cap on open connections a new one evicts the connection that has waited longest for request headers
    (an idle flood fills the cap with exactly those), so a client that sends its request promptly still gets in;
    only when every connection is busy with a request is the new one refused.
    """

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self.max_open = settings.max_open or default_max_open()
        self.open = 0
        self.unauthenticated: Counter[str] = Counter()
        self.idle: dict[Idle, None] = {}  # insertion order: the oldest waiter first
        self.refused = 0  # connections closed at once since start
        self.evicted = 0  # idle connections closed to make room

    def admit(self, ip: str) -> Ticket | None:
        if self.unauthenticated[ip] >= self.settings.max_unauthenticated_per_ip:
            self.refused += 1
            return None
        if self.open >= self.max_open:
            if not self.idle:
                self.refused += 1
                return None
            oldest = next(iter(self.idle))
            self.waiting(oldest, False)
            self.evicted += 1
            oldest.evict()  # its release follows when the loop reports the connection lost
        self.open += 1
        self.unauthenticated[ip] += 1
        return Ticket(self, ip)

    def release(self, ticket: Ticket) -> None:
        self.open -= 1
        if not ticket.authenticated:
            self.unauthenticated[ticket.ip] -= 1
        if self.unauthenticated[ticket.ip] <= 0:
            del self.unauthenticated[ticket.ip]

    def waiting(self, connection: Idle, idle: bool) -> None:
        """``connection`` now waits for request headers (``idle``), or no longer does."""
        if idle:
            self.idle[connection] = None
        else:
            self.idle.pop(connection, None)


def mark_authenticated(scope: Scope) -> None:
    """The request on this connection presented a valid key: its connection no longer counts as unauthenticated."""
    ticket = scope.get("state", {}).get(STATE_KEY)
    if isinstance(ticket, Ticket):
        ticket.authenticate()


_ledger: Ledger | None = None


def ledger() -> Ledger:
    """This worker's ledger, made from the environment's settings on first use (each worker is its own process)."""
    global _ledger
    if _ledger is None:
        from guardserve.app.settings import Settings

        _ledger = Ledger(Settings().connections)
    return _ledger
