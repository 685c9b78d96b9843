"""Screen concurrent requests' texts in one call.

The default toxicity classifier costs about the same for 1 text as for 100. Like continuous batching in an engine:
when no batch is running, a text is scored at once (no added latency when idle); while one runs, new texts gather
and go together as the next batch, which starts as soon as the running one ends (or after ``max_wait``, or when
``max_batch`` texts wait).

A text already waiting or being scored is not scored twice: a second caller shares the first one's result (the
semantic classifier's guards -- toxicity, harmful requests, injection -- all ask about the same message at once, and
one encoder pass answers them all).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

T = TypeVar("T")


class MicroBatcher(Generic[T]):
    def __init__(
        self,
        fn: Callable[[Sequence[str]], list[T]],
        *,
        executor: Executor | None = None,
        max_batch: int = 64,
        max_wait: float = 0.002,
    ) -> None:
        self._fn = fn
        self._executor = executor
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._pending: list[tuple[str, asyncio.Future[T]]] = []
        self._inflight: dict[str, asyncio.Future[T]] = {}  # text -> its result, while waiting or being scored
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.calls = 0  # batches run (for tests and metrics)

    def score_now(self, text: str) -> T:
        """Score one text in the calling thread (for callers already off the event loop)."""
        return self._fn([text])[0]

    async def submit(self, text: str) -> T:
        shared = self._inflight.get(text)
        if shared is not None:
            return await asyncio.shield(shared)  # one caller giving up never cancels the others' result
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._inflight[text] = future
        future.add_done_callback(lambda done: self._settled(text, done))
        self._pending.append((text, future))
        if not self._running or len(self._pending) >= self._max_batch:
            self._dispatch()
        elif self._timer is None:
            self._timer = loop.call_later(self._max_wait, self._dispatch)
        return await asyncio.shield(future)

    def _settled(self, text: str, future: asyncio.Future[T]) -> None:
        if self._inflight.get(text) is future:
            del self._inflight[text]
        if not future.cancelled():
            future.exception()  # retrieved: callers that gave up leave no "exception never retrieved" warning

    def _dispatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._pending and not self._running:
            self._dispatch()

    async def _run(self, batch: list[tuple[str, asyncio.Future[T]]]) -> None:
        self.calls += 1
        texts = [text for text, _ in batch]
        try:
            scores = await asyncio.get_running_loop().run_in_executor(self._executor, self._fn, texts)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), score in zip(batch, scores, strict=True):
            if not future.done():
                future.set_result(score)
