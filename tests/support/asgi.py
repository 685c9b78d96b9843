"""What the suite's raw ASGI upstreams share: the lifespan handshake and reading a request body."""

from __future__ import annotations

from starlette.types import Receive, Send


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer startup (and anything else) until shutdown."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body
