"""Decorators that observe the engine and admission seams without the serving code knowing.

:class:`InstrumentedEngine` wraps each served engine: a span per call (``engine.generate`` / ``engine.stream``),
``engine_errors_total{engine,kind}`` for every :class:`~models.engine.EngineError` (kind is its bounded ``kind``;
anything else is ``internal``; cancellation is not an error) and ``engine_up{engine}`` from every health check.
Attributes the wrapped engine has beyond the protocol (``inflight``, ``stats``) are passed through.

:class:`TracedAdmission` puts the admission decision (rate limits) in its own span.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from guardserve.app.context import RequestContext
from guardserve.app.observability.metrics import GatewayMetrics
from guardserve.app.observability.tracing import Span, Tracer
from guardserve.app.services import Admission
from guardserve.models.engine import (
    Completion,
    Delta,
    Engine,
    EngineError,
    EngineHealth,
    GenerationRequest,
    PassThrough,
)
from guardserve.models.registry import ServedModel


class InstrumentedEngine:
    def __init__(self, name: str, kind: str, inner: Engine, metrics: GatewayMetrics | None, tracer: Tracer) -> None:
        self.name = name
        self.inner = inner
        self._metrics = metrics
        self._tracer = tracer
        self._attributes = {"guardserve.engine": name, "guardserve.engine_kind": kind}

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)

    @contextlib.contextmanager
    def _call(self, name: str, **attributes: str) -> Iterator[Span]:
        """A span around one whole call; a failure is recorded on it and counted."""
        span = self._tracer.start_span(name, {**self._attributes, **attributes})
        try:
            yield span
        except BaseException as exc:
            self._failed(span, exc)
            raise
        finally:
            span.end()

    async def generate(self, request: GenerationRequest) -> Completion:
        with self._call("engine.generate") as span:
            result = await self.inner.generate(request)
            span.set_attribute("guardserve.finish_reason", result.finish_reason)
        return result

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        span = self._tracer.start_span("engine.stream", self._attributes)
        deltas = self.inner.stream(request)
        first, finished = True, False
        try:
            async for delta in deltas:
                if first and delta.text:
                    first = False
                    span.add_event("first_token")
                if delta.finish_reason is not None:
                    finished = True
                    span.set_attribute("guardserve.finish_reason", delta.finish_reason)
                yield delta
        except GeneratorExit:
            if not finished:  # closed before the end: the client went away
                span.set_attribute("guardserve.cancelled", True)
            raise
        except BaseException as exc:
            self._failed(span, exc)
            raise
        finally:
            aclose = getattr(deltas, "aclose", None)
            if aclose is not None:
                await aclose()
            span.end()

    async def health(self) -> EngineHealth:
        try:
            health = await self.inner.health()
        except Exception as exc:
            health = EngineHealth(False, f"health check failed: {type(exc).__name__}", 0)
        if self._metrics is not None:
            self._metrics.engine_health(self.name, health.ok)
        return health

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _failed(self, span: Span, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError | GeneratorExit):
            span.set_attribute("guardserve.cancelled", True)
            return
        kind = exc.kind if isinstance(exc, EngineError) else "internal"
        span.set_error(kind)
        if self._metrics is not None:
            self._metrics.engine_error(self.name, kind)


class InstrumentedPassThrough(InstrumentedEngine):
    """The same for an engine that forwards OpenAI bodies (:class:`~guardserve.models.engine.PassThrough`)."""

    inner: Any

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._call("engine.generate", **{"guardserve.route": path}):
            result: dict[str, Any] = await self.inner.post_json(path, body)
        return result

    async def post_stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        span = self._tracer.start_span("engine.stream", {**self._attributes, "guardserve.route": path})
        events = self.inner.post_stream(path, body)
        first = True
        try:
            async for event in events:
                if first:
                    first = False
                    span.add_event("first_event")
                yield event
        except GeneratorExit:
            span.set_attribute("guardserve.cancelled", True)
            raise
        except BaseException as exc:
            self._failed(span, exc)
            raise
        finally:
            await events.aclose()
            span.end()


def instrument(served: ServedModel, metrics: GatewayMetrics | None, tracer: Tracer) -> ServedModel:
    wrapper = InstrumentedPassThrough if isinstance(served.engine, PassThrough) else InstrumentedEngine
    engine = wrapper(served.name, served.entry.engine, served.engine, metrics, tracer)
    return ServedModel(served.entry, engine, served.context_length, served.trained, served.created)


class TracedAdmission:
    def __init__(self, inner: Admission, tracer: Tracer) -> None:
        self.inner = inner
        self._tracer = tracer

    async def admit(self, ctx: RequestContext, served: ServedModel, request: GenerationRequest) -> None:
        with self._tracer.span("admission", {"guardserve.model": served.name}):
            await self.inner.admit(ctx, served, request)

    async def admit_moderation(self, ctx: RequestContext, texts: Sequence[str]) -> None:
        with self._tracer.span("admission", {"guardserve.route": "moderations"}):
            await self.inner.admit_moderation(ctx, texts)
