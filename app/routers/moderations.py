"""``POST /v1/moderations`` in OpenAI's shape, with GuardServe's categories: toxicity, pii, prompt_injection."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.errors import SERVER_ERROR, APIError
from app.protocol import Moderation, ModerationRequest, ModerationResult
from app.serving.guarding import record_guard_metrics
from guardrails.runtime import Guardrails

router = APIRouter(prefix="/v1")

MAX_INPUTS = 64
MODEL = "guardserve-moderation"


@router.post("/moderations", responses={200: {"model": Moderation}})
async def create_moderation(body: ModerationRequest, request: Request) -> Response:
    guardrails: Guardrails | None = request.app.state.services.guardrails
    if guardrails is None:
        raise APIError(
            404, "Moderation is unavailable: guardrails are disabled on this server.", code="guardrails_disabled"
        )
    texts = body.texts()
    if not texts or len(texts) > MAX_INPUTS:
        raise APIError(400, f"'input' must hold 1 to {MAX_INPUTS} texts.", param="input", code="invalid_value")
    try:
        results = await guardrails.moderate(texts)
    except RuntimeError as exc:
        raise APIError(
            503, str(exc), type=SERVER_ERROR, code="guardrail_unavailable", headers={"Retry-After": "1"}
        ) from exc
    for result in results:
        record_guard_metrics(request.app.state.services.metrics, "moderation", result.decisions)
    moderation = Moderation(
        id=f"modr-{uuid.uuid4().hex}",
        model=body.model or MODEL,
        results=[
            ModerationResult(flagged=r.flagged, categories=r.categories, category_scores=r.scores) for r in results
        ],
    )
    return Response(content=moderation.__pydantic_serializer__.to_json(moderation), media_type="application/json")
