"""Tracing seam: spans for the request, auth, the limiter, each guard and the engine; a no-op unless enabled.

Features use :class:`Tracer` from ``Services.tracer``::

    with services.tracer.span("guard.pii", {"guardserve.guard": "pii", "guardserve.stage": "input"}):
        ...

OpenTelemetry sits behind it (:mod:`.otel`, the optional ``otel`` extra) and is imported only when
``GUARDSERVE_OBSERVABILITY__OTEL_ENABLED`` is true. Spans carry bounded attributes only (route template, model,
request id, error kind): never prompts, completions, keys or exception messages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from guardserve.app.settings import ObservabilitySettings

log = logging.getLogger(__name__)

Attribute = str | int | float | bool
Attributes = Mapping[str, Attribute]


class Span(Protocol):
    def set_attribute(self, key: str, value: Attribute) -> None: ...

    def add_event(self, name: str) -> None: ...

    def set_error(self, kind: str) -> None:
        """Mark the span failed with a bounded error kind (a class or ``EngineError.kind``, no message)."""
        ...

    def end(self) -> None: ...


class Tracer(Protocol):
    def span(
        self, name: str, attributes: Attributes | None = None, server: bool = False
    ) -> AbstractContextManager[Span]:
        """A span that is current inside the ``with`` block (children nest under it); failures mark it."""
        ...

    def start_span(self, name: str, attributes: Attributes | None = None) -> Span:
        """A child of the current span that is *not* made current: for work that outlives one call (a stream).

        The caller ends it.
        """
        ...

    def shutdown(self) -> None:
        """Flush and stop exporting (blocking: call it from a thread)."""
        ...


class NoSpan:
    def set_attribute(self, key: str, value: Attribute) -> None:
        return None

    def add_event(self, name: str) -> None:
        return None

    def set_error(self, kind: str) -> None:
        return None

    def end(self) -> None:
        return None


_NO_SPAN = NoSpan()


class NoTracer:
    @contextmanager
    def _span(self) -> Iterator[Span]:
        yield _NO_SPAN

    def span(
        self, name: str, attributes: Attributes | None = None, server: bool = False
    ) -> AbstractContextManager[Span]:
        return self._span()

    def start_span(self, name: str, attributes: Attributes | None = None) -> Span:
        return _NO_SPAN

    def shutdown(self) -> None:
        return None


def build_tracer(settings: ObservabilitySettings) -> Tracer:
    """OpenTelemetry with an OTLP/HTTP exporter when enabled and installed; otherwise the no-op tracer."""
    if not settings.otel_enabled:
        return NoTracer()
    try:
        from guardserve.app.observability.otel import otlp_tracer

        return otlp_tracer(settings.otel_service_name, settings.otel_endpoint)
    except ImportError:
        log.warning("tracing is enabled but the `otel` extra is not installed (pip install 'guardserve[otel]'): off")
        return NoTracer()
