"""Screen concurrent requests' texts in one call (:class:`MicroBatcher` for classifiers; :class:`PreparedBatcher`
for the PII guard, whose NER model runs over all the batch's texts in one pass).

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
from contextlib import AbstractContextManager
from typing import Generic, Protocol, TypeVar

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


class Abandonable(Protocol):
    abandoned: bool  # set by the caller that gave the work up (client gone, deadline passed)


class PreparedBatcher:
    """Run concurrent requests' worker jobs in one worker call, with shared preparation done once for all of them.

    For the PII guard: every job is one request's :meth:`~guardrails.guards.PIIGuard.inspect_many`; ``prepare``
    (:meth:`~guardserve.guardrails.pii.engine.PIIEngine.prepared_items`) runs the NER model over all the batch's
    texts in one ``nlp.pipe`` call, then each job runs as it would alone, in arrival order. ``prepare`` gets each
    text with its job's ``tag`` (the PII guard's NER scope: input and output guards' texts share a batch, each read
    its own way). Per-request semantics stay: a job whose ``state`` is abandoned before the batch starts is skipped
    (its texts are not even prepared); one abandoned while the batch runs stops where it checks (before each text).
    Dispatch as in :class:`MicroBatcher`: a job arriving while fewer than ``parallel`` batches run starts at once;
    otherwise it waits for the next batch, which starts as soon as a running one ends (at most ``max_chars``
    characters of text per batch, so one batch stays short).
    """

    def __init__(
        self,
        prepare: Callable[[Sequence[tuple[str, str]]], AbstractContextManager[object]],
        *,
        executor: Executor | None = None,
        parallel: int = 1,
        max_chars: int = 16_384,
    ) -> None:
        self._prepare = prepare
        self._executor = executor
        self._parallel = max(1, parallel)
        self._max_chars = max_chars
        self._pending: list[_Job] = []
        self._running = 0
        self.calls = 0  # batches run (tests, metrics)
        self.jobs = 0  # jobs run in them

    async def run(self, texts: Sequence[str], state: Abandonable, job: Callable[[], T], tag: str = "") -> T:
        """``job()`` in a batch; ``texts`` are what it will analyse (prepared together with the batch's others, each
        as ``(text, tag)``). Cancelling the await does not stop a running job: the caller sets ``state.abandoned``
        for that."""
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(list(texts), tag, state, job, future))
        if self._running < self._parallel:
            self._dispatch()
        return await future  # type: ignore[return-value]

    def _dispatch(self) -> None:
        batch: list[_Job] = []
        chars = 0
        while self._pending and (not batch or chars + self._pending[0].chars <= self._max_chars):
            job = self._pending.pop(0)
            if job.future.done() or job.state.abandoned:  # given up while queued: never runs
                continue
            batch.append(job)
            chars += job.chars
        if not batch:
            return
        self._running += 1
        task = asyncio.get_running_loop().create_task(self._run(batch))
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running -= 1
        while self._pending and self._running < self._parallel:
            before = len(self._pending)
            self._dispatch()
            if len(self._pending) == before:
                break

    async def _run(self, batch: list[_Job]) -> None:
        self.calls += 1
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self._work, batch)
        except Exception as exc:
            results = [exc] * len(batch)
        for job, result in zip(batch, results, strict=True):
            if job.future.done():
                continue
            if isinstance(result, _Failed):
                job.future.set_exception(result.error)
            elif isinstance(result, Exception):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)

    def _work(self, batch: list[_Job]) -> list[object]:
        """In the worker: prepare the texts of the jobs still wanted, then run each (skipping those given up)."""
        live = [job for job in batch if not job.state.abandoned]
        out: dict[int, object] = {}
        with self._prepare([(t, job.tag) for job in live for t in job.texts]):
            for job in live:
                if job.state.abandoned:
                    continue
                self.jobs += 1
                try:
                    out[id(job)] = job.job()
                except Exception as exc:
                    out[id(job)] = _Failed(exc)
        return [out.get(id(job), _Failed(TimeoutError("given up before it ran"))) for job in batch]


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error


class _Job:
    __slots__ = ("chars", "future", "job", "state", "tag", "texts")

    def __init__(
        self, texts: list[str], tag: str, state: Abandonable, job: Callable[[], object], future: asyncio.Future[object]
    ) -> None:
        self.texts = texts
        self.tag = tag
        self.state = state
        self.job = job
        self.future = future
        self.chars = sum(len(t) for t in texts)
