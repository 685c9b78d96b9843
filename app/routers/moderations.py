"""``POST /v1/moderations`` in OpenAI's shape, with GuardServe's categories: toxicity, harmful_request, pii and
prompt_injection.

Cheapest first, as for completions: the size caps (``GUARDSERVE_CAPS__MAX_MODERATION_*``), admission against the
moderation limits (``GUARDSERVE_LIMITS__MODERATION__*``), then the guards (bounded queue, deadline), raced against
the client: a client that leaves cancels the guard work.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.responses import Response

from guardserve.app.cancellation import until_disconnect
from guardserve.app.context import get_context
from guardserve.app.errors import SERVER_ERROR, APIError, ClientDisconnectedError
from guardserve.app.protocol import Moderation, ModerationRequest, ModerationResult
from guardserve.app.services import Services
from guardserve.app.serving.caps import check_moderation
from guardserve.app.serving.guarding import guardrails_busy, record_guard_metrics
from guardserve.guardrails.gate import GuardrailsBusyError

router = APIRouter(prefix="/v1")

MODEL = "guardserve-moderation"


@router.post("/moderations", responses={200: {"model": Moderation}})
async def create_moderation(body: ModerationRequest, request: Request) -> Response:
    services: Services = request.app.state.services
    guardrails = services.guardrails
    if guardrails is None:
        raise APIError(
            404, "Moderation is unavailable: guardrails are disabled on this server.", code="guardrails_disabled"
        )
    texts = body.texts()
    check_moderation(texts, services.settings.caps)
    ctx = get_context(request)
    await services.admission.admit_moderation(ctx, texts)
    try:
        results = await until_disconnect(request, guardrails.moderate(texts))
    except ClientDisconnectedError:
        ctx.disconnected = True
        raise
    except GuardrailsBusyError:
        raise guardrails_busy(services.settings.retry_after_seconds) from None
    except RuntimeError as exc:
        raise APIError(
            503, str(exc), type=SERVER_ERROR, code="guardrail_unavailable", headers={"Retry-After": "1"}
        ) from exc
    for result in results:
        record_guard_metrics(services.metrics, "moderation", result.decisions)
    moderation = Moderation(
        id=f"modr-{uuid.uuid4().hex}",
        model=body.model or MODEL,
        results=[
            ModerationResult(flagged=r.flagged, categories=r.categories, category_scores=r.scores) for r in results
        ],
    )
    return Response(content=moderation.__pydantic_serializer__.to_json(moderation), media_type="application/json")
