"""Liveness (``/health``: the process answers) and readiness (``/ready``: every engine reachable, model loaded)."""

from __future__ import annotations

import asyncio
import logging

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from guardserve.models.registry import ServedModel

log = logging.getLogger(__name__)
router = APIRouter()


@router.get("/health")
async def health() -> Response:
    return Response(content=b'{"status":"ok"}', media_type="application/json")


@router.get("/ready")
async def ready(request: Request) -> Response:
    """Unauthenticated, so it says only whether each model (by name) and the guardrails are ready, and how many
    requests each model has in flight: no checkpoint paths, upstream URLs or failure details (those are logged)."""
    models: dict[str, ServedModel] = request.app.state.model_set.named()  # candidate versions answer requests too
    checks = await asyncio.gather(*(m.engine.health() for m in models.values()))
    report = {
        name: {"status": "ready" if h.ok else "not_ready", "ok": h.ok, "inflight": h.inflight}
        for name, h in zip(models, checks, strict=True)
    }
    for name, h in zip(models, checks, strict=True):
        if not h.ok:
            log.warning("model %s is not ready: %s", name, h.detail)
    ok = all(h.ok for h in checks)
    guardrails = request.app.state.services.guardrails
    body = {
        "status": "ready" if ok else "not_ready",
        "models": report,
        "guardrails": {"enabled": guardrails is not None},
    }
    headers = {} if ok else {"Retry-After": str(request.app.state.settings.retry_after_seconds)}
    return Response(orjson.dumps(body), status_code=200 if ok else 503, headers=headers, media_type="application/json")
