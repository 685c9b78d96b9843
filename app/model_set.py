"""The running models: start them from the registry, reload the registry without a restart, drain what it removed.

``app.state.models`` (name -> the stable version) and ``app.state.canaries`` (name -> the candidate version and its
share) are the only two maps requests read; a reload changes them in place between two awaits, so a request sees
the old set or the new one, never half of each. A version whose registry entry is unchanged keeps its running
engine (a reload that only moves a canary's share starts nothing). A version the new registry no longer has is
*drained*: requests already on it (they hold it from the moment they chose it, streams included) run to their end
on it, and only then is its engine closed; new requests go to the new set at once.

Triggers: ``POST /admin/models/reload`` (admin keys) and ``SIGHUP`` to a gateway process (each worker is its own
process: signal each, or call the endpoint on each replica). One reload runs at a time; a registry that does not
load leaves everything as it was and says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter
from collections.abc import Callable
from typing import Any

from guardserve.app.rollout import Canary, version_key
from guardserve.models.registry import ModelEntry, ServedModel, start_engine

log = logging.getLogger(__name__)


class ModelSet:
    def __init__(
        self,
        entries: Callable[[], list[ModelEntry]],
        start: Callable[[ModelEntry], Any],
        instrument: Callable[[ServedModel], ServedModel],
        drain_timeout_s: float = 600.0,
    ) -> None:
        """``entries`` reads the registry (again on every reload); ``start`` starts one entry's engine
        (:func:`~guardserve.models.registry.start_engine` with the gateway's settings); ``instrument`` wraps a
        started one for metrics and traces."""
        self._entries = entries
        self._start = start
        self._instrument = instrument
        self.drain_timeout_s = drain_timeout_s
        self.models: dict[str, ServedModel] = {}
        self.canaries: dict[str, Canary] = {}
        self._inflight: Counter[int] = Counter()  # id(served) -> requests on it now
        self._running: dict[str, tuple[ModelEntry, ServedModel]] = {}  # version key -> its entry and engine
        self._lock = asyncio.Lock()
        self._idle: dict[int, asyncio.Event] = {}  # id(served) -> set once a removed version has no requests
        self._tasks: set[asyncio.Task[Any]] = set()  # drains and signalled reloads
        self.on_started: list[Callable[[list[ServedModel]], Any]] = []  # e.g. the feedback records' checkpoints

    # --- what requests use ------------------------------------------------------------------------------------

    def all(self) -> list[ServedModel]:
        return list(self.named().values())

    def named(self) -> dict[str, ServedModel]:
        """Every version that answers requests: each stable one by its model's name, each candidate as
        ``name@label`` (:func:`guardserve.app.rollout.version_key`)."""
        named = dict(self.models)
        for name, canary in self.canaries.items():
            named[version_key(name, canary.served.entry.version)] = canary.served
        return named

    def acquire(self, served: ServedModel) -> Callable[[], None]:
        """Count a request on ``served`` until the returned release is called (when the request has finished)."""
        key = id(served)
        self._inflight[key] += 1

        def release() -> None:
            self._inflight[key] -= 1
            if self._inflight[key] <= 0:
                del self._inflight[key]
                idle = self._idle.get(key)
                if idle is not None:
                    idle.set()

        return release

    def spawn(self, work: Any, name: str) -> None:
        """Run ``work`` (a coroutine) as a task this set keeps referenced and cancels when it closes."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- start, reload, close ---------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.reload()

    async def reload(self) -> dict[str, list[str]]:
        """Apply the registry as it is now: which versions were started, kept and removed (removed ones drain)."""
        async with self._lock:
            entries = self._entries()  # a RegistryError here changes nothing
            wanted: dict[str, tuple[ModelEntry, float | None]] = {}
            for entry in entries:  # each version's own entry: a stable one without its candidate (a new share or
                # a new candidate is no reason to restart the stable engine)
                wanted[version_key(entry.name, entry.version)] = (entry.model_copy(update={"candidate": None}), None)
                candidate = entry.candidate_entry()
                if candidate is not None and entry.candidate is not None:
                    wanted[version_key(candidate.name, candidate.version)] = (candidate, entry.candidate.percent)
            keep = {k for k, (e, _) in wanted.items() if k in self._running and self._running[k][0] == e}
            new = [k for k in wanted if k not in keep]
            started = await asyncio.gather(*(self._start(wanted[k][0]) for k in new), return_exceptions=True)
            failed = [(k, s) for k, s in zip(new, started, strict=True) if isinstance(s, BaseException)]
            if failed:
                await asyncio.gather(*(s.engine.aclose() for s in started if isinstance(s, ServedModel)))
                key, error = failed[0]
                raise RuntimeError(f"cannot start model {key}: {error}") from error
            fresh = {k: self._instrument(s) for k, s in zip(new, started, strict=True) if isinstance(s, ServedModel)}
            removed = [(k, served) for k, (_, served) in self._running.items() if k not in keep]
            running = {k: self._running[k][1] for k in keep} | fresh
            models = {e.name: running[version_key(e.name, e.version)] for e in entries}
            canaries = {}
            for key, (entry, percent) in wanted.items():
                if percent is not None:
                    canaries[entry.name] = Canary(running[key], percent)
            # the swap: no await between these lines, so a request sees the old maps or the new ones
            self._running = {k: (wanted[k][0], running[k]) for k in wanted}
            self.models.clear()
            self.models.update(models)
            self.canaries.clear()
            self.canaries.update(canaries)
            for callback in self.on_started:
                result = callback(list(fresh.values()))
                if asyncio.iscoroutine(result):
                    await result
            for key, served in removed:
                self.spawn(self._drain(key, served), f"drain {key}")
            for name, canary in self.canaries.items():
                log.info("model %s: candidate %s gets %.2f%% of its traffic", name, canary.served.entry.version,
                         canary.percent)  # fmt: skip
            return {"started": list(fresh), "kept": sorted(keep), "removed": [k for k, _ in removed]}

    async def _drain(self, key: str, served: ServedModel) -> None:
        idle = self._idle[id(served)] = asyncio.Event()
        if self._inflight.get(id(served), 0) == 0:
            idle.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(idle.wait(), self.drain_timeout_s)
        finally:
            self._idle.pop(id(served), None)
        left = self._inflight.get(id(served), 0)
        if left:
            log.warning("model %s removed: %d requests still on it after %.0f s; closing it", key, left,
                        self.drain_timeout_s)  # fmt: skip
        else:
            log.info("model %s removed and drained", key)
        await served.engine.aclose()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(served.engine.aclose() for _, served in self._running.values()))
        self._running = {}


def engine_starter(settings: Any) -> Callable[[ModelEntry], Any]:
    """``start`` for :class:`ModelSet`: the entry's engine with the gateway's engine settings."""

    def start(entry: ModelEntry) -> Any:
        return start_engine(entry, cpu=settings.cpu, http=settings.http, breaker=settings.http.breaker_config())

    return start


def install_reload_signal(model_set: ModelSet) -> None:
    """``SIGHUP`` reloads the registry (where this process may set signal handlers: its main thread, not Windows)."""
    loop = asyncio.get_running_loop()

    async def reload() -> None:
        try:
            log.info("SIGHUP: registry reloaded: %s", await model_set.reload())
        except Exception as exc:  # a bad registry: keep serving what runs, say why
            log.error("SIGHUP: registry not reloaded: %s", exc)

    def on_signal() -> None:
        model_set.spawn(reload(), "SIGHUP reload")

    try:
        loop.add_signal_handler(signal.SIGHUP, on_signal)
    except (NotImplementedError, RuntimeError, ValueError, AttributeError):  # not the main thread, or no SIGHUP
        log.debug("no SIGHUP handler here: reload with POST /admin/models/reload")
