"""PII scrubbing for what the feedback store keeps: the guardrails PII engine, typed placeholders (``<EMAIL_ADDRESS>``).

CPU-bound (Presidio): it runs in its own small thread pool, never on the event loop; at most ``queue`` texts wait for
a thread and each call is bounded by ``timeout`` (a late one is abandoned and fails). The engine is built on first
use, off the event loop, and shared by every call. Failing to scrub raises :class:`ScrubError`: callers never store
the raw text instead.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from guardserve.guardrails.pii.engine import PIIEngine


class ScrubError(Exception):
    """The text could not be scrubbed in time (or at all); it must not be stored."""


class Scrubber(Protocol):
    async def scrub(self, texts: Sequence[str]) -> list[str]:
        """The texts with every PII finding replaced by ``<ENTITY_TYPE>``; raises :class:`ScrubError`."""
        ...

    def close(self) -> None:
        """Stop; blocks until running work ends (call it off the event loop)."""
        ...


class PIIScrubber:
    def __init__(self, workers: int = 2, queue: int = 256, timeout: float = 10.0) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="feedback-scrub")
        self._slots = asyncio.Semaphore(workers + queue)
        self._timeout = timeout
        self._engine: PIIEngine | None = None
        self._lock = threading.Lock()

    def _get_engine(self) -> PIIEngine:
        with self._lock:
            if self._engine is None:
                from guardserve.guardrails.pii.config import PIIConfig
                from guardserve.guardrails.pii.engine import PIIEngine

                # stored feedback: every place the NER model finds is scrubbed (guardrails.pii.places, scope all)
                self._engine = PIIEngine(PIIConfig(place_scope="all"))
            return self._engine

    def _scrub_sync(self, texts: Sequence[str]) -> list[str]:
        from guardserve.guardrails.types import Action

        engine = self._get_engine()
        return [engine.transform(t, engine.analyze(t), Action.PLACEHOLDER) if t.strip() else t for t in texts]

    def warm(self) -> Future[PIIEngine]:
        """Build the engine now (in the pool), so the first scrub does not pay for it; done once it is built."""
        return self._pool.submit(self._get_engine)

    async def scrub(self, texts: Sequence[str]) -> list[str]:
        if not any(t.strip() for t in texts):
            return list(texts)
        if self._slots.locked():
            raise ScrubError("too many texts waiting to be scrubbed")
        async with self._slots:
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(self._timeout):
                    return await loop.run_in_executor(self._pool, self._scrub_sync, list(texts))
            except TimeoutError:
                raise ScrubError(f"scrubbing took more than {self._timeout:g} s") from None
            except RuntimeError as exc:  # the pool is shut down
                raise ScrubError(str(exc)) from None
            except Exception as exc:
                raise ScrubError(type(exc).__name__) from None

    def close(self) -> None:
        """Cancel queued work and wait for the running (a thread left importing Presidio, and with it transformers,
        races the next importer of transformers in this process: seen as a half-initialised module)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
