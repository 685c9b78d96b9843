"""prometheus_client's multiprocess mode, for ``guardserve serve --workers N``.

* :func:`prepare` (the CLI, before uvicorn starts its workers): a fresh directory per server start, exported as
  ``PROMETHEUS_MULTIPROC_DIR`` so every worker (a spawned process) inherits it and writes its values there.
* :func:`collecting_registry` (any worker's ``/metrics``, or the CLI's metrics port): sums the files of every
  worker, live or dead. Counters and histograms of a dead worker still count; its *live* gauges (in-flight
  requests, engine up, limiter degraded) are dropped, on graceful exit (:func:`worker_exited`) or, after a crash,
  at the next scrape (:func:`reap_dead_processes`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Metric, multiprocess, values
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


def directory() -> str | None:
    """The multiprocess directory if this process records in multiprocess mode, else None."""
    path = os.environ.get(ENV)
    if not path:
        return None
    if values.ValueClass is values.MutexValue:
        log.warning("%s was set after prometheus_client was imported; metrics stay in this process", ENV)
        return None
    os.makedirs(path, exist_ok=True)  # values are written there from the first metric on
    return path


def prepare() -> tuple[Path, bool]:
    """Make the directory for a new server start; return it and whether we created it (and so remove it)."""
    offered = os.environ.get(ENV)
    if offered:
        path = Path(offered)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # values of an earlier run would be added to this one's
            stale.unlink()
        return path, False
    path = Path(tempfile.mkdtemp(prefix="guardserve-metrics-"))
    os.environ[ENV] = str(path)
    return path, True


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_processes(path: str) -> list[int]:
    """Drop the live gauges of workers that died without cleaning up; return their pids."""
    dead = set()
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(path):
            match = _LIVE_GAUGE_FILE.match(name)
            if match and not _alive(int(match.group(1))):
                dead.add(int(match.group(1)))
    for pid in dead:
        multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]
    return sorted(dead)


def worker_exited(path: str) -> None:
    """A worker shutting down drops its live gauges."""
    multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]


class _AllWorkers(Collector):
    """prometheus_client's multiprocess collector, dropping crashed workers' live gauges before each collection."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._files = multiprocess.MultiProcessCollector(None, path=path)  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        reap_dead_processes(self.path)
        metrics: Iterable[Metric] = self._files.collect()  # type: ignore[no-untyped-call]
        return metrics


def collecting_registry(path: str) -> CollectorRegistry:
    """A registry that reads every worker's values from ``path`` each time it is collected."""
    registry = CollectorRegistry()
    registry.register(_AllWorkers(path))
    return registry
