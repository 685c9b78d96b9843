"""What the serving layer needs besides the request: built once in the app factory, passed to every handler.

Each member sits behind a small protocol so the serving code never knows which implementation it talks to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from guardserve.app.context import RequestContext
from guardserve.app.limits.counting import TokenCounters
from guardserve.app.observability.recorder import MetricsRecorder, NoMetrics
from guardserve.app.observability.tracing import NoTracer, Tracer
from guardserve.app.settings import Settings
from guardserve.guardrails.runtime import Guardrails
from guardserve.models.engine import GenerationRequest
from guardserve.models.registry import ServedModel


class Admission(Protocol):
    """Decides whether a request may run now (rate limits, quotas, concurrency).

    Called once the engine request is known (and fits the model's context) and before any guard or engine work.
    Raises ``APIError`` (429/503; 413 for a request larger than a limit itself) to refuse. An implementation that
    reserves something registers ``ctx.on_finish`` to settle it when the response ends.
    """

    async def admit(self, ctx: RequestContext, served: ServedModel, request: GenerationRequest) -> None: ...

    async def admit_moderation(self, ctx: RequestContext, texts: Sequence[str]) -> None:
        """The same for a ``/v1/moderations`` call, against the moderation limits (their own budget)."""
        ...


class AdmitAll:
    async def admit(self, ctx: RequestContext, served: ServedModel, request: GenerationRequest) -> None:
        return None

    async def admit_moderation(self, ctx: RequestContext, texts: Sequence[str]) -> None:
        return None


@dataclass
class Services:
    settings: Settings
    admission: Admission = field(default_factory=AdmitAll)
    guardrails: Guardrails | None = None  # None: guardrails disabled
    metrics: MetricsRecorder = field(default_factory=NoMetrics)  # guards, limits, feedback record here
    tracer: Tracer = field(default_factory=NoTracer)  # spans for auth, the limiter, each guard
    tokens: TokenCounters = field(default_factory=TokenCounters)  # prompt token counts (the context-length check)
