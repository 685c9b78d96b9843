"""uvicorn's httptools protocol with connection hygiene: the header deadline and the caps of
:mod:`app.connections` (read that module's docstring first). Wired in by ``guardserve serve`` (app/cli.py)."""

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
