"""Rate-limit decisions and the degraded flag, for metrics, without the limiter knowing about Prometheus.

* :attr:`LimitEvents.decisions` counts ``(limit, result)`` pairs and :meth:`LimitEvents.subscribe` passes each to a
  listener; :meth:`guardserve.app.access.Access.report_to` connects them to ``MetricsRecorder.ratelimit_decision``
  (``guardserve_ratelimit_decisions_total{limit,result}``). ``result`` is ``allowed``, ``limited`` (429),
  ``fail_open`` (Redis down, decided by the per-process fallback) or ``fail_closed`` (Redis down, 503); ``limit``
  is the kind that refused (``requests``, ``tokens``, ``concurrency``, ``tokens_per_day``), ``all`` otherwise.
  Never a key or a tenant.
* :attr:`LimitEvents.degraded` (``guardserve_ratelimit_backend_degraded``) is true while Redis is failing;
  :meth:`RedisBackend.on_degraded` notifies changes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from guardserve.app.observability.recorder import RateLimitResult

log = logging.getLogger(__name__)

Listener = Callable[[str, RateLimitResult], None]
# our limit names -> the metric's `limit` values
METRIC_LIMITS = {
    "requests": "requests",
    "tokens": "tokens",
    "concurrent": "concurrency",
    "tokens_per_day": "tokens_per_day",
}


class LimitEvents:
    def __init__(self, degraded: Callable[[], bool] = lambda: False) -> None:
        self.decisions: Counter[tuple[str, RateLimitResult]] = Counter()
        self._degraded = degraded
        self._listeners: list[Listener] = []

    @property
    def degraded(self) -> bool:
        return self._degraded()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def decision(self, limit: str, result: RateLimitResult) -> None:
        self.decisions[(limit, result)] += 1
        for listener in self._listeners:
            try:
                listener(limit, result)
            except Exception:
                log.exception("rate-limit decision listener failed")
