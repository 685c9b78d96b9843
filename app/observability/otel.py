"""The OpenTelemetry implementation of :class:`~guardserve.app.observability.tracing.Tracer` (the ``otel`` extra).

Imported only when tracing is enabled. Each app gets its own ``TracerProvider`` (no global provider is set), so
tests can hand one with an in-memory exporter to :class:`OTelTracer`. Exceptions are not recorded as span events
(their messages can quote the request): a failed span gets status ERROR and an ``error.type`` attribute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from guardserve.app.observability.tracing import Attribute, Attributes, Span


class OTelSpan:
    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def set_attribute(self, key: str, value: Attribute) -> None:
        self._span.set_attribute(key, value)

    def add_event(self, name: str) -> None:
        self._span.add_event(name)

    def set_error(self, kind: str) -> None:
        self._span.set_attribute("error.type", kind)
        self._span.set_status(Status(StatusCode.ERROR))

    def end(self) -> None:
        self._span.end()


class OTelTracer:
    def __init__(self, provider: trace.TracerProvider) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("guardserve")

    @contextmanager
    def _current(self, name: str, attributes: Attributes | None, server: bool) -> Iterator[Span]:
        kind = SpanKind.SERVER if server else SpanKind.INTERNAL
        with self._tracer.start_as_current_span(
            name, kind=kind, attributes=attributes, record_exception=False, set_status_on_exception=False
        ) as span:
            handle = OTelSpan(span)
            try:
                yield handle
            except (asyncio.CancelledError, GeneratorExit):
                span.set_attribute("guardserve.cancelled", True)
                raise
            except BaseException as exc:
                handle.set_error(type(exc).__name__)
                raise

    def span(
        self, name: str, attributes: Attributes | None = None, server: bool = False
    ) -> AbstractContextManager[Span]:
        return self._current(name, attributes, server)

    def start_span(self, name: str, attributes: Attributes | None = None) -> Span:
        return OTelSpan(self._tracer.start_span(name, attributes=attributes))

    def shutdown(self) -> None:
        shutdown = getattr(self._provider, "shutdown", None)
        if shutdown is not None:
            shutdown()


def otlp_tracer(service_name: str, endpoint: str) -> OTelTracer:
    """Spans batched in a background thread and sent over OTLP/HTTP to ``endpoint`` (a collector)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return OTelTracer(provider)
