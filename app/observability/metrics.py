"""Every Prometheus metric the gateway exports, built per app (no import-time registration), and their exposition.

Single process: the metrics live in this object's own :class:`CollectorRegistry`, so several apps in one process
(tests) never collide. Several uvicorn workers (``guardserve serve --workers N``): prometheus_client's
multiprocess mode, chosen by ``PROMETHEUS_MULTIPROC_DIR`` being set when the worker starts; each worker writes
its values to files in that directory and any worker's ``/metrics`` reads them all (see :mod:`.multiproc`).

Labels are bounded (:mod:`.labels`): route templates, registry names, status codes, fixed sets.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder

from guardserve.app.context import RequestContext
from guardserve.app.observability import multiproc
from guardserve.app.observability.labels import FixedLabel, ModelLabel, NamedLabel, status_label
from guardserve.app.observability.recorder import (
    FEEDBACK_RATINGS,
    GUARD_ACTIONS,
    GUARD_STAGES,
    RATELIMIT_RESULTS,
    RECORD_RESULTS,
    FeedbackRating,
    GuardAction,
    GuardStage,
    RateLimitResult,
    RecordResult,
)

PREFIX = "guardserve_"

# Seconds. TTFT and TPOT use vLLM's buckets (plus 2 s, the default TTFT SLO in the alert rules).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 2.5, 5.0, 7.5, 10.0, 20.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0)
GUARD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

ENGINE_ERROR_KINDS = ("internal", "invalid_request", "unavailable", "timeout", "upstream")


def time_to_first_token(ctx: RequestContext) -> float | None:
    """vLLM's TTFT: request arrival to the engine's first output token (streamed requests: the gateway sees tokens
    there). What the guards' hold-back adds before the client sees it is ``guard_holdback_seconds``."""
    return None if ctx.first_token_at is None else ctx.first_token_at - ctx.started


def time_per_output_token(ctx: RequestContext) -> float | None:
    """vLLM's TPOT: (last token time - first token time) / (completion tokens - 1); needs two tokens or more."""
    if ctx.first_token_at is None or ctx.last_token_at is None or ctx.completion_tokens < 2:
        return None
    return max(0.0, ctx.last_token_at - ctx.first_token_at) / (ctx.completion_tokens - 1)


class GatewayMetrics:
    """The metric objects and the recording API (:class:`~guardserve.app.observability.recorder.MetricsRecorder`)."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir if multiprocess_dir is not None else multiproc.directory()
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` twin per series (process-wide and idempotent)
        self.registry = CollectorRegistry(auto_describe=True)
        if self.multiprocess_dir is None:  # custom collectors do not work in multiprocess mode
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        r = self.registry
        self.models = ModelLabel()
        self.engine_kinds = FixedLabel("kind", ENGINE_ERROR_KINDS)
        self.guards = NamedLabel("guard")
        self.limits = NamedLabel("limit")
        self.stages = FixedLabel("stage", GUARD_STAGES)
        self.actions = FixedLabel("action", GUARD_ACTIONS)
        self.results = FixedLabel("result", RATELIMIT_RESULTS)
        self.ratings = FixedLabel("rating", FEEDBACK_RATINGS)

        self.requests = Counter(
            PREFIX + "requests_total",
            "HTTP requests answered, by route template, served model and status (499: the client left first).",
            ["route", "model", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            PREFIX + "request_duration_seconds",
            "Request arrival to the end of the response (the last byte of a stream).",
            ["route", "model"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            PREFIX + "time_to_first_token_seconds",
            "Streamed requests: request arrival to the first output token.",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            PREFIX + "time_per_output_token_seconds",
            "Streamed requests with 2+ tokens: (last token time - first token time) / (completion tokens - 1).",
            ["model"],
            buckets=TPOT_BUCKETS,
            registry=r,
        )
        self.holdback = Histogram(
            PREFIX + "guard_holdback_seconds",
            "Streamed requests: the engine's first token to the first text the output guards released to the client.",
            ["model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(PREFIX + "prompt_tokens_total", "Prompt tokens processed.", ["model"], registry=r)
        self.completion_tokens = Counter(
            PREFIX + "completion_tokens_total", "Completion tokens generated (sent or not).", ["model"], registry=r
        )
        self.inflight = Gauge(
            PREFIX + "inflight_requests",
            "Requests being served now (all workers).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.guard_seconds = Histogram(
            PREFIX + "guard_duration_seconds",
            "Time one guard took on one request, by guard and stage (input/output).",
            ["guard", "stage"],
            buckets=GUARD_BUCKETS,
            registry=r,
        )
        self.guard_actions = Counter(
            PREFIX + "guard_actions_total",
            "Guard decisions: allow, block, redact, flag, error (the guard failed).",
            ["guard", "stage", "action"],
            registry=r,
        )
        self.ratelimit_decisions = Counter(
            PREFIX + "ratelimit_decisions_total",
            "Rate-limit decisions by kind of limit: allowed, limited, fail_open, fail_closed.",
            ["limit", "result"],
            registry=r,
        )
        self.ratelimit_backend_degraded = Gauge(
            PREFIX + "ratelimit_backend_degraded",
            "1 while the limiter's shared backend is unreachable (any worker).",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.engine_errors = Counter(
            PREFIX + "engine_errors_total",
            "Engine failures by engine (registry name) and kind.",
            ["engine", "kind"],
            registry=r,
        )
        self.engine_up = Gauge(
            PREFIX + "engine_up",
            "1 if the engine answers its health check (0 if any worker's engine does not).",
            ["engine"],
            registry=r,
            multiprocess_mode="livemin",
        )
        self.feedback_ratings = Counter(
            PREFIX + "feedback_total", "Feedback records accepted, by rating.", ["rating"], registry=r
        )
        for rating in FEEDBACK_RATINGS:
            self.feedback_ratings.labels(rating)
        self.feedback_records = Counter(
            PREFIX + "feedback_records_total",
            "Response records (app.feedback) written, or failed (store down, scrubbing failed, too many pending).",
            ["result"],
            registry=r,
        )
        for result in RECORD_RESULTS:
            self.feedback_records.labels(result)
        self.feedback_export_lag_entries = Gauge(
            PREFIX + "feedback_export_lag",
            "Feedback stream entries (all tenants) that `guardserve feedback export` has not read yet.",
            registry=r,
            multiprocess_mode="livemax",
        )

    # --- set-up ---------------------------------------------------------------------------------------------

    def set_models(self, names: Iterable[str]) -> None:
        """The served models (registry names): the only values of the ``model`` and ``engine`` labels."""
        self.models.set_models(names)
        for name in self.models.names:
            for kind in ENGINE_ERROR_KINDS:
                self.engine_errors.labels(name, kind)  # exported as 0 from the start, so rate() sees the first

    # --- requests (the observability middleware) -------------------------------------------------------------

    def request_started(self) -> None:
        self.inflight.inc()

    def request_finished(self, ctx: RequestContext, route: str) -> None:
        """Record a finished request; the in-flight gauge drops last (a scrape seeing 0 sees everything else)."""
        model = self.models(ctx.model)
        self.requests.labels(route, model, status_label(ctx.status, ctx.disconnected)).inc()
        self.request_duration.labels(route, model).observe(time.perf_counter() - ctx.started)
        if ctx.prompt_tokens > 0:
            self.prompt_tokens.labels(model).inc(ctx.prompt_tokens)
        if ctx.completion_tokens > 0:
            self.completion_tokens.labels(model).inc(ctx.completion_tokens)
        ttft = time_to_first_token(ctx)
        if ttft is not None:
            self.ttft.labels(model).observe(ttft)
        tpot = time_per_output_token(ctx)
        if tpot is not None:
            self.tpot.labels(model).observe(tpot)
        if ctx.first_token_at is not None and ctx.first_sent_at is not None:
            self.holdback.labels(model).observe(max(0.0, ctx.first_sent_at - ctx.first_token_at))
        self.inflight.dec()

    # --- engines (the instrumented engine) ------------------------------------------------------------------

    def engine_error(self, engine: str, kind: str) -> None:
        self.engine_errors.labels(self.models(engine), self.engine_kinds(kind)).inc()

    def engine_health(self, engine: str, up: bool) -> None:
        self.engine_up.labels(self.models(engine)).set(1 if up else 0)

    # --- features (MetricsRecorder) -------------------------------------------------------------------------

    def guard_action(self, guard: str, stage: GuardStage, action: GuardAction) -> None:
        self.guard_actions.labels(self.guards(guard), self.stages(stage), self.actions(action)).inc()

    def guard_duration(self, guard: str, stage: GuardStage, seconds: float) -> None:
        self.guard_seconds.labels(self.guards(guard), self.stages(stage)).observe(max(0.0, seconds))

    def ratelimit_decision(self, limit: str, result: RateLimitResult) -> None:
        self.ratelimit_decisions.labels(self.limits(limit), self.results(result)).inc()

    def ratelimit_degraded(self, degraded: bool) -> None:
        self.ratelimit_backend_degraded.set(1 if degraded else 0)

    def feedback(self, rating: FeedbackRating) -> None:
        self.feedback_ratings.labels(self.ratings(rating)).inc()

    def feedback_record(self, result: RecordResult) -> None:
        self.feedback_records.labels(result if result in RECORD_RESULTS else "failed").inc()

    def feedback_export_lag(self, entries: int) -> None:
        self.feedback_export_lag_entries.set(entries)

    # --- exposition -----------------------------------------------------------------------------------------

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The metrics in the format the scraper asked for (Prometheus text or OpenMetrics): body, content type.

        Blocking (it may read many files in multiprocess mode): call it from a thread.
        """
        encoder, content_type = choose_encoder(accept)
        if self.multiprocess_dir is None:
            return encoder(self.registry), content_type
        return encoder(multiproc.collecting_registry(self.multiprocess_dir)), content_type
