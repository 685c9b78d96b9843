"""Cancel a handler's work the moment its client disconnects (non-streaming requests).

Starlette cancels a *streaming* body when the client goes away, but a handler awaiting a whole completion keeps
running. :func:`until_disconnect` races the work against the ASGI ``http.disconnect`` message and cancels the
work if the client leaves first; for the HTTP engine that closes the upstream request, for the CPU engine it
frees the batch slot. (The request body has already been read when handlers run, so the next ``receive`` is the
disconnect.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from guardserve.app.errors import ClientDisconnectedError

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise ClientDisconnectedError
