"""Cancel a handler's work the moment its client disconnects (non-streaming requests).

Starlette cancels a *streaming* body when the client goes away, but a handler awaiting a whole completion keeps
running. :func:`until_disconnect` runs the work as a task of its own and a watcher task waits for the ASGI
``http.disconnect`` message; if the client leaves first, the watcher cancels the work where it waits: for the HTTP
engine that closes the upstream request, for the CPU engine it frees the batch slot. (The request body has already
been read when handlers run, so the next ``receive`` is the disconnect.)

Why a task of its own: a coroutine suspended deep inside the ASGI stack (a dozen middlewares and routing frames
above the handler) pays for that whole chain each time it resumes, and the upstream call suspends many times; in
its own task it resumes from a shallow stack, and the handler suspends once, on the task. The handler awaits the
work task directly (no ``asyncio.wait``, which costs more than the two tasks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.requests import Request

from guardserve.app.errors import ClientDisconnectedError

T = TypeVar("T")


async def until_disconnect(request: Request, work: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.get_running_loop()
    task = loop.create_task(work)
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = loop.create_task(watch())
    try:
        return await task
    except asyncio.CancelledError:
        if gone and task.cancelled():  # the watcher's cancel, not the caller's
            raise ClientDisconnectedError from None
        task.cancel()  # the caller was cancelled: so is the work
        raise
    finally:
        watcher.cancel()
