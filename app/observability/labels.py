"""Label values that cannot grow without bound, whatever the callers pass.

Every label value the gateway records goes through one of these: a fixed set (status classes, stages, actions),
the operator's registry (model and engine names), or a pattern-checked name with a cap on how many distinct
values one process will ever emit. Anything else becomes :data:`OTHER` (or :data:`NONE` for "no model").
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

log = logging.getLogger(__name__)

OTHER = "other"  # a value outside the allowed set
NONE = "none"  # no served model was resolved (unknown model, or a route without one)
UNMATCHED = "unmatched"  # a URL that matches no route

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class FixedLabel:
    """A label whose values are known in advance."""

    def __init__(self, name: str, values: Iterable[str]) -> None:
        self.name = name
        self.values = frozenset(values)

    def __call__(self, value: str) -> str:
        return value if value in self.values else OTHER


class NamedLabel:
    """Names chosen in code or configuration (guards, limits): a safe pattern, and at most ``cap`` of them."""

    def __init__(self, name: str, cap: int = 32) -> None:
        self.name = name
        self.cap = cap
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if not _NAME.match(value):
            log.warning("metric label %s: refused a value that is not a plain name", self.name)
            return OTHER
        with self._lock:
            if len(self._seen) >= self.cap:
                log.warning("metric label %s: more than %d distinct values; using %r", self.name, self.cap, OTHER)
                return OTHER
            self._seen.add(value)
        return value


class ModelLabel:
    """Served-model names from the registry (the operator's file); anything else is :data:`NONE`."""

    def __init__(self) -> None:
        self.names: frozenset[str] = frozenset()

    def set_models(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)

    def __call__(self, value: str | None) -> str:
        return value if value is not None and value in self.names else NONE


def status_label(status: int | None, disconnected: bool) -> str:
    """The HTTP status as three digits; 499 when the client left before the answer was complete."""
    if disconnected:
        return "499"
    if status is None or not 100 <= status <= 599:
        return "500"  # nothing (valid) was sent: the server failed before answering
    return str(status)
