"""Liveness (``/health``: the process answers) and readiness (``/ready``: every engine reachable, model loaded)."""

from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from models.registry import ServedModel

router = APIRouter()


@router.get("/health")
async def health() -> Response:
    return Response(content=b'{"status":"ok"}', media_type="application/json")


@router.get("/ready")
async def ready(request: Request) -> Response:
    models: dict[str, ServedModel] = request.app.state.models
    checks = await asyncio.gather(*(m.engine.health() for m in models.values()))
    report = {
        name: {"ok": h.ok, "detail": h.detail, "inflight": h.inflight, **h.info}
        for name, h in zip(models, checks, strict=True)
    }
    ok = all(h.ok for h in checks)
    guardrails = request.app.state.services.guardrails
    body = {
        "status": "ready" if ok else "not_ready",
        "models": report,
        "guardrails": guardrails.info() if guardrails is not None else {"enabled": False},
    }
    headers = {} if ok else {"Retry-After": str(request.app.state.settings.retry_after_seconds)}
    return Response(orjson.dumps(body), status_code=200 if ok else 503, headers=headers, media_type="application/json")
