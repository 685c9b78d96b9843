"""The app factory. Nothing heavy happens at import: engines start in the lifespan and close with it."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from guardserve.app.access import Access
from guardserve.app.context import RequestContext
from guardserve.app.errors import install_error_handlers
from guardserve.app.feedback.service import build_feedback
from guardserve.app.heap import freeze_after, freeze_startup_heap
from guardserve.app.middleware import BodyLimitMiddleware, JSONBodyMiddleware, RequestContextMiddleware
from guardserve.app.model_set import ModelSet, engine_starter, install_reload_signal
from guardserve.app.native_threads import one_native_thread
from guardserve.app.observability.audit import AuditLog, AuditMiddleware
from guardserve.app.observability.core import Observability
from guardserve.app.observability.instrumented import TracedAdmission
from guardserve.app.observability.middleware import ObservabilityMiddleware
from guardserve.app.openapi import install_openapi
from guardserve.app.routers import admin, feedback, health, metrics, moderations, openai
from guardserve.app.services import Services
from guardserve.app.settings import GuardrailSettings, Settings
from guardserve.app.ui import router as ui
from guardserve.guardrails.runtime import Guardrails
from guardserve.models.registry import ModelEntry, load_registry

log = logging.getLogger(__name__)


def registry_entries(settings: Settings) -> list[ModelEntry]:
    return list(settings.models) if settings.models else load_registry(settings.registry)


async def start_guardrails(settings: GuardrailSettings) -> Guardrails | None:
    """Load the policies and build their guards (Presidio + the NER model take seconds: off the event loop)."""
    if not settings.enabled:
        log.warning("guardrails are DISABLED: prompts and answers are not screened")
        return None
    salt = settings.hash_salt.get_secret_value() if settings.hash_salt is not None else None
    guardrails = await asyncio.to_thread(
        Guardrails.from_file,
        settings.policy_file,
        default_policy=settings.default_policy,
        workers=settings.workers,
        batch_wait=settings.batch_wait_ms / 1000,
        hash_salt=salt,
        deadline=settings.deadline,
        screenings=settings.screenings,
        max_queued=settings.max_queued,
    )
    info = guardrails.info()
    log.info(
        "guardrails on: policies %s, default %r, NER %s", info["policies"], info["default_policy"], info["ner_model"]
    )
    return guardrails


async def _limited(warm_up: Awaitable[None]) -> None:
    """``warm_up``, then one native thread for the libraries it loaded."""
    await warm_up
    one_native_thread()


def create_app(settings: Settings | None = None, observability: Observability | None = None) -> FastAPI:
    """The gateway. ``observability`` defaults to what the settings ask for (tests pass their own tracer)."""
    settings = settings or Settings()
    obs = observability or Observability.from_settings(settings)
    access = Access.build(settings)  # keys, limits, Redis; refuses prod without real secrets
    access.report_to(obs.recorder)  # rate-limit decisions and the degraded flag become metrics
    records = build_feedback(settings, access.backend, obs.recorder)  # response records and feedback (app/feedback)

    services = Services(
        settings=settings,
        admission=TracedAdmission(access.admission, obs.tracer),
        metrics=obs.recorder,
        tracer=obs.tracer,
        tokens=access.counters,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await access.start()
        try:
            services.guardrails = await start_guardrails(settings.guardrails)
            one_native_thread()  # the guards: one BLAS/OpenMP thread per call (app/native_threads.py)
            try:
                await model_set.start()
                obs.models_changed(model_set.models)
                log.info("startup heap frozen: %d objects", freeze_startup_heap())
                await obs.start(app.state.models)
                refreeze = None
                if records is not None:
                    await records.start(model_set.all())
                    model_set.on_started.append(records.learn_versions)
                    refreeze = asyncio.create_task(freeze_after(_limited(records.warmed())), name="after-warm-up")
                model_set.on_started.append(lambda _: obs.models_changed(model_set.models))
                install_reload_signal(model_set)
                try:
                    yield
                finally:
                    if refreeze is not None:
                        refreeze.cancel()
                    if records is not None:
                        await records.aclose()  # pending record writes first, while Redis is still open
                    await obs.stop()
                    await model_set.aclose()
            finally:
                if services.guardrails is not None:
                    services.guardrails.close()
        finally:
            await access.aclose()
            audit.close()

    # FastAPI's own OpenTelemetry hooks off: the gateway traces itself (app/observability/tracing.py), and with them on
    # every request pays three os.environ look-ups (each a KeyError) to find no provider: ~6% of its CPU.
    docs = settings.serves_docs
    app = FastAPI(
        title="GuardServe",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        **_no_fastapi_telemetry(),
    )
    app.state.settings = settings
    app.state.observability = obs
    app.state.access = access
    app.state.services = services
    app.state.feedback = records
    model_set = ModelSet(lambda: registry_entries(settings), engine_starter(settings), obs.instrument_served)
    app.state.model_set = model_set  # reloads (app/model_set.py)
    app.state.models = model_set.models  # name -> the stable version
    app.state.canaries = model_set.canaries  # name -> its candidate version and traffic share (app.rollout)
    install_error_handlers(app)
    app.include_router(openai.router)
    app.include_router(moderations.router)
    app.include_router(admin.router)
    app.include_router(feedback.router)
    app.include_router(health.router)
    app.include_router(ui.router)  # the web playground at /ui (static files)
    if obs.serves_metrics_route:
        app.include_router(metrics.router)
    install_openapi(app)
    # Outermost last: the request context exists before anything else; the body limit's 413 and auth's 401/403
    # are observed; auth runs before the body is read.
    app.add_middleware(JSONBodyMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout)
    access.install(app)  # AuthMiddleware (+ the key store's 503 handler)
    audit = AuditLog(settings.observability.audit_log)  # one JSON line per API request (its own sink)
    app.state.audit = audit

    def checkpoint(ctx: RequestContext) -> str | None:
        return records.checkpoint_of(ctx) if records is not None else None

    app.add_middleware(AuditMiddleware, audit=audit, checkpoint=checkpoint)
    app.add_middleware(ObservabilityMiddleware, observability=obs, routes=app.router.routes)
    if settings.cors_origins:  # preflights are answered before auth: a browser sends them without a key
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "x-guardrails-policy", "x-guardrails-input", "x-guardrails-output"],
        )
    app.add_middleware(RequestContextMiddleware)
    return app


def _no_fastapi_telemetry() -> dict[str, Any]:
    """``telemetry=`` all off where this FastAPI has native telemetry (0.16x); nothing for an older one."""
    if importlib.util.find_spec("fastapi.telemetry") is None:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}


def create_app_from_env() -> FastAPI:
    """ASGI factory for ``uvicorn --factory`` and multi-worker serving: settings from the environment."""
    return create_app(Settings())
