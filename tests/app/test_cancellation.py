"""until_disconnect: the work's result, its cancellation when the client leaves, and the caller's own cancel."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from starlette.requests import Request

from guardserve.app.cancellation import until_disconnect
from guardserve.app.errors import ClientDisconnectedError


class FakeRequest:
    """``receive`` waits until the test says the client has gone."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}


def as_request(fake: FakeRequest) -> Request:
    return cast(Request, fake)


async def test_returns_the_work_and_leaves_no_cancel_behind() -> None:
    fake = FakeRequest()
    assert await until_disconnect(as_request(fake), asyncio.sleep(0, result="done")) == "done"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    fake.gone.set()
    await asyncio.sleep(0)  # a disconnect after the work is over changes nothing


class Endless:
    """Work that waits for ever; ``started`` once it runs, ``cancelled`` once it has been cancelled."""

    def __init__(self) -> None:
        self.started, self.cancelled = asyncio.Event(), asyncio.Event()

    async def __call__(self) -> str:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return "never"


async def test_disconnect_cancels_the_work() -> None:
    fake = FakeRequest()
    work = Endless()
    started, cancelled = work.started, work.cancelled

    async def handler() -> None:
        with pytest.raises(ClientDisconnectedError):
            await until_disconnect(as_request(fake), work())
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # the handler goes on (writes its error response)

    running = asyncio.create_task(handler())
    await asyncio.wait_for(started.wait(), 30)
    fake.gone.set()
    await asyncio.wait_for(running, 30)
    assert cancelled.is_set()


async def test_the_callers_cancel_stays_a_cancel() -> None:
    fake = FakeRequest()
    work = Endless()
    started, cancelled = work.started, work.cancelled
    running = asyncio.create_task(until_disconnect(as_request(fake), work()))
    await asyncio.wait_for(started.wait(), 30)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await asyncio.wait_for(cancelled.wait(), 30)  # the work went with it


async def test_work_that_swallows_the_cancel_returns_its_result() -> None:
    fake = FakeRequest()

    async def stubborn() -> str:
        try:
            fake.gone.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return "kept"
        return "never"

    async def handler() -> str:
        result = await until_disconnect(as_request(fake), stubborn())
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        return result

    assert await asyncio.wait_for(asyncio.create_task(handler()), 30) == "kept"
