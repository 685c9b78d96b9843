"""What a metrics module reads from the limiter, without the limiter knowing about Prometheus.

* :attr:`LimitEvents.decisions` counts ``(limit, result)`` pairs, and :meth:`LimitEvents.subscribe` calls a
  listener on each one (for ``ratelimit_decisions_total{limit,result}``). ``result`` is ``allowed``, ``limited``
  or ``unavailable`` (Redis down in fail_closed mode); ``limit`` is ``all`` for allowed and unavailable, and
  ``{key|tenant}_{requests|tokens|concurrent|tokens_per_day}`` for what refused. Both sets are bounded.
* :attr:`LimitEvents.degraded` (for ``ratelimit_backend_degraded``) is true while Redis is failing and decisions
  come from the per-process fallback; :meth:`RedisBackend.on_degraded` notifies changes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

log = logging.getLogger(__name__)

Listener = Callable[[str, str], None]


class LimitEvents:
    def __init__(self, degraded: Callable[[], bool] = lambda: False) -> None:
        self.decisions: Counter[tuple[str, str]] = Counter()
        self._degraded = degraded
        self._listeners: list[Listener] = []

    @property
    def degraded(self) -> bool:
        return self._degraded()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def decision(self, limit: str, result: str) -> None:
        self.decisions[(limit, result)] += 1
        for listener in self._listeners:
            try:
                listener(limit, result)
            except Exception:
                log.exception("rate-limit decision listener failed")
