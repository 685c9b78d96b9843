"""Cancel a handler's work the moment its client disconnects (non-streaming requests).

Starlette cancels a *streaming* body when the client goes away, but a handler awaiting a whole completion keeps
running. :func:`until_disconnect` awaits the work in the handler's own task while one watcher task waits for the
ASGI ``http.disconnect`` message; if the client leaves first, the watcher cancels the handler's task, which
cancels the work where it waits: for the HTTP engine that closes the upstream request, for the CPU engine it
frees the batch slot. (The request body has already been read when handlers run, so the next ``receive`` is the
disconnect.) One task per request, not two and an ``asyncio.wait``: this runs on every request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from guardserve.app.errors import ClientDisconnectedError

T = TypeVar("T")


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    handler = asyncio.current_task()
    if handler is None:  # not inside a task (never in an ASGI app): nothing to cancel
        return await work
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone = True
        handler.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        result = await work
    except asyncio.CancelledError:
        if gone and handler.uncancel() == 0:  # our own cancellation, not the caller's
            raise ClientDisconnectedError from None
        raise
    finally:
        watcher.cancel()
    if gone:  # the work finished anyway (it swallowed the cancellation): take back our cancel request
        handler.uncancel()
    return result
