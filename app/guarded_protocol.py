"""uvicorn's httptools protocol with connection hygiene: the header deadline and the caps of
:mod:`app.connections` (read that module's docstring first), and each response's writes coalesced per turn of the
event loop (:class:`CoalescedWrites`). Wired in by ``guardserve serve`` (app/cli.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from guardserve.app.connections import STATE_KEY, Ticket, ledger


async def busy(scope: Scope, receive: Receive, send: Send) -> None:
    """The answer to a request beyond the worker's cap: 503 in OpenAI's envelope, retry in a second."""
    from guardserve.app.errors import APIError

    await APIError(
        503,
        "The gateway is at its request limit; retry shortly.",
        type="server_error",
        code="busy",
        headers={"retry-after": "1"},
    ).response()(scope, receive, send)


def _reset(transport: asyncio.Transport) -> None:
    """Close with a TCP reset (SO_LINGER 0): the client learns it was refused, and no TIME_WAIT is left here."""
    sock = transport.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class CoalescedWrites:
    """The transport as a response cycle sees it: what the cycle writes in one turn of the event loop goes out in
    one send, at the end of that turn.

    uvicorn writes each ASGI message as it comes: a whole answer is two sends (the head on
    ``http.response.start``, then the body), a stream one send per event, though the upstream's events usually
    arrive, and are forwarded, many in one turn. On loopback each send costs the kernel's TCP work for both ends:
    py-spy put uvicorn's two sends at ~16 % of the auth path's samples. Nothing waits longer than the turn it was
    written in; ``close`` sends what is pending first, ``abort`` drops it. The cycle's flow control still sees the
    real transport's state (uvicorn's ``FlowControl`` is driven by the protocol), and the most one turn holds back
    is what that turn wrote."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, ...: the real transport's
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the header deadline and the caps described above."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ledger = ledger()
        self._ticket: Ticket | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._app = self.app
        self.timeout_keep_alive = self._ledger.settings.keep_alive_timeout  # type: ignore[assignment]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._ticket = self._ledger.admit(self.client[0] if self.client else "")
        if self._ticket is None:
            _reset(transport)
            return
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        if self._ticket is not None:
            self._ledger.release(self._ticket)
            self._ticket = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm_deadline()
        self.scope["state"][STATE_KEY] = self._ticket

    def on_headers_complete(self) -> None:
        self._disarm_deadline()
        over = len(self.tasks) >= self._ledger.settings.max_requests and not self.url.startswith(b"/health")
        self.app = busy if over else self._app
        super().on_headers_complete()
        if self.cycle is not None:  # the cycle just made (its task has not run yet): its writes coalesced
            self.cycle.transport = CoalescedWrites(self.transport, self.loop)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._ticket is not None and not self.transport.is_closing() and not self.pipeline:
            self._ledger.waiting(self, True)  # kept alive: idle until the next request's first byte

    def evict(self) -> None:
        self._disarm_deadline()
        _reset(self.transport)

    def _arm_deadline(self) -> None:
        self._deadline = self.loop.call_later(self._ledger.settings.header_timeout, self._headers_too_late)
        self._ledger.waiting(self, True)

    def _disarm_deadline(self) -> None:
        self._ledger.waiting(self, False)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_late(self) -> None:
        self._deadline = None
        self._ledger.waiting(self, False)
        if not self.transport.is_closing():
            self.transport.close()
