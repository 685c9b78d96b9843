"""One app's observability: metrics (or none), the tracer, and what runs beside the app while it serves.

Built in ``create_app`` (nothing at import), started and stopped by its lifespan:

* :meth:`Observability.instrument` wraps every served engine (errors, health, spans);
* :meth:`Observability.start` polls engine health for ``engine_up`` and, in a single process with
  ``metrics_port`` set, serves ``/metrics`` on that port;
* :meth:`Observability.stop` undoes it, drops this worker's live gauges (multiprocess) and flushes traces.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from guardserve.app.observability.exporter import MetricsServer, start_metrics_server
from guardserve.app.observability.health import poll_engine_health
from guardserve.app.observability.instrumented import instrument
from guardserve.app.observability.metrics import GatewayMetrics
from guardserve.app.observability.multiproc import worker_exited
from guardserve.app.observability.recorder import MetricsRecorder, NoMetrics
from guardserve.app.observability.tracing import NoTracer, Tracer, build_tracer
from guardserve.app.settings import ObservabilitySettings, Settings
from guardserve.models.registry import ServedModel


@dataclass
class Observability:
    metrics: GatewayMetrics | None = None
    tracer: Tracer = field(default_factory=NoTracer)
    health_interval: float = 5.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    _poller: asyncio.Task[None] | None = field(default=None, repr=False)
    _server: MetricsServer | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, tracer: Tracer | None = None) -> Observability:
        o: ObservabilitySettings = settings.observability
        return cls(
            metrics=GatewayMetrics() if o.metrics_enabled else None,
            tracer=tracer if tracer is not None else build_tracer(o),
            health_interval=o.engine_health_interval,
            metrics_host=o.metrics_host or settings.host,
            metrics_port=o.metrics_port,
        )

    @property
    def recorder(self) -> MetricsRecorder:
        """What features record through (``Services.metrics``)."""
        return self.metrics if self.metrics is not None else NoMetrics()

    @property
    def serves_metrics_route(self) -> bool:
        """Whether the API port answers ``/metrics`` (not when a separate metrics port is configured)."""
        return self.metrics is not None and self.metrics_port is None

    def instrument(self, models: dict[str, ServedModel]) -> dict[str, ServedModel]:
        if self.metrics is not None:
            self.metrics.set_models(models)
        return {name: instrument(served, self.metrics, self.tracer) for name, served in models.items()}

    def instrument_served(self, served: ServedModel) -> ServedModel:
        """One version's engine, instrumented under its model's name (every version of a model shares the
        metrics' model label, which stays bounded by the registry's names)."""
        return instrument(served, self.metrics, self.tracer)

    def models_changed(self, models: dict[str, ServedModel]) -> None:
        """The registry's model names now (after start-up or a reload): the values the model label may take."""
        if self.metrics is not None:
            self.metrics.set_models(models)

    async def start(self, models: dict[str, ServedModel]) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        self._poller = asyncio.create_task(poll_engine_health(models, metrics, self.health_interval))
        # With several workers the supervisor (`guardserve serve`) serves the metrics port for all of them.
        if self.metrics_port is not None and metrics.multiprocess_dir is None:
            self._server = await asyncio.to_thread(
                start_metrics_server, metrics.registry, self.metrics_host, self.metrics_port
            )

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self._server is not None:
            await asyncio.to_thread(self._server.stop)
            self._server = None
        if self.metrics is not None and self.metrics.multiprocess_dir is not None:
            worker_exited(self.metrics.multiprocess_dir)
        await asyncio.to_thread(self.tracer.shutdown)
