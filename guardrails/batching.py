"""Screen concurrent requests' texts in one call.

The default toxicity classifier costs about the same for 1 text as for 100, so texts submitted within a short window
(or until ``max_batch``) are scored together in a worker thread. A caller waits at most ``max_wait`` plus one batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor


class MicroBatcher:
    def __init__(
        self,
        fn: Callable[[Sequence[str]], list[float]],
        *,
        executor: Executor | None = None,
        max_batch: int = 64,
        max_wait: float = 0.002,
    ) -> None:
        self._fn = fn
        self._executor = executor
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._pending: list[tuple[str, asyncio.Future[float]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.calls = 0  # batches run (for tests and metrics)

    async def submit(self, text: str) -> float:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float] = loop.create_future()
        self._pending.append((text, future))
        if len(self._pending) >= self._max_batch:
            self._dispatch()
        elif self._timer is None:
            self._timer = loop.call_later(self._max_wait, self._dispatch)
        return await future

    def _dispatch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[str, asyncio.Future[float]]]) -> None:
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
