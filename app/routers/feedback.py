"""``/v1/feedback``: rate an answer, read and delete feedback; ``DELETE /v1/responses/{id}`` and
``POST /admin/erasure``: the privacy operations. The logic lives in :mod:`guardserve.app.feedback.service`.

Every lookup is scoped to the caller's tenant: another tenant's ids are 404s, exactly like ids that never existed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field, StrictInt
from starlette.responses import Response

from guardserve.app.auth.records import NAME_PATTERN
from guardserve.app.auth.service import SYSTEM_TENANT
from guardserve.app.context import get_context
from guardserve.app.errors import APIError
from guardserve.app.feedback.model import Category
from guardserve.app.feedback.service import FeedbackService, public, response_not_found
from guardserve.app.protocol import RequestBody

router = APIRouter()

RESPONSE_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
MAX_COMMENT = 2000
MAX_PREFERRED = 32_768
MAX_IDEMPOTENCY_KEY = 255
_IDEMPOTENCY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces


class FeedbackBody(RequestBody):
    model_config = ConfigDict(extra="forbid")

    response_id: str = Field(pattern=RESPONSE_ID)  # the chatcmpl-… / cmpl-… id the client got
    rating: Literal["up", "down"] | Annotated[StrictInt, Field(ge=1, le=5)]
    categories: list[Category] = Field(default_factory=list, max_length=6)
    comment: str | None = Field(None, max_length=MAX_COMMENT)  # PII-scrubbed before it is stored
    preferred: str | None = Field(None, max_length=MAX_PREFERRED)  # a better answer; PII-scrubbed too
    user: str | None = Field(None, max_length=256)  # the OpenAI `user`; stored only as a keyed hash


class ErasureBody(RequestBody):
    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(None, min_length=1, max_length=256)
    response_id: str | None = Field(None, pattern=RESPONSE_ID)
    tenant: str | None = Field(None, pattern=NAME_PATTERN)  # the bootstrap admin names the tenant


def _feedback(request: Request) -> FeedbackService:
    service: FeedbackService | None = getattr(request.app.state, "feedback", None)
    if service is None:
        raise APIError(404, "Feedback is disabled on this gateway (feedback.enabled=false).", code="feedback_disabled")
    return service


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _idempotency_key(request: Request) -> str | None:
    offered = request.headers.get("idempotency-key")
    if offered is None:
        return None
    if not _IDEMPOTENCY.match(offered):
        raise APIError(
            400,
            f"The Idempotency-Key header must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters without spaces.",
            param="Idempotency-Key",
            code="invalid_idempotency_key",
        )
    return offered


@router.post("/v1/feedback", status_code=201)
async def create_feedback(body: FeedbackBody, request: Request) -> Response:
    service = _feedback(request)
    ctx = get_context(request)
    values = body.model_dump()
    values["categories"] = list(dict.fromkeys(body.categories))
    record, replay = await service.submit(ctx, values, _idempotency_key(request))
    response = _json(public(record), status=201)
    if replay:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@router.get("/v1/feedback")
async def list_feedback(request: Request, response_id: str | None = None) -> Response:
    if response_id is None or not re.match(RESPONSE_ID, response_id):
        raise APIError(
            400,
            "Give the response_id query parameter: the id of a completion.",
            param="response_id",
            code="missing_required_parameter" if response_id is None else "invalid_value",
        )
    records = await _feedback(request).list(get_context(request), response_id)
    return _json({"object": "list", "data": [public(r) for r in records]})


@router.get("/v1/feedback/{feedback_id}")
async def get_feedback(feedback_id: str, request: Request) -> Response:
    return _json(public(await _feedback(request).get(get_context(request), feedback_id)))


@router.delete("/v1/feedback/{feedback_id}")
async def delete_feedback(feedback_id: str, request: Request) -> Response:
    await _feedback(request).delete(get_context(request), feedback_id)
    return _json({"id": feedback_id, "object": "feedback.deleted", "deleted": True})


@router.delete("/v1/responses/{response_id}")
async def erase_response(response_id: str, request: Request) -> Response:
    """Erase what is kept about one response: its record and every feedback on it (tombstoned for exports)."""
    ctx = get_context(request)
    erased = await _feedback(request).erase_response(ctx.tenant or "anonymous", response_id)
    if not erased:
        raise response_not_found(response_id)
    return _json({"id": response_id, "object": "response.deleted", "deleted": True, "erased": erased})


@router.post("/admin/erasure")
async def erasure(body: ErasureBody, request: Request) -> Response:
    """Erase one OpenAI ``user``'s records and feedback, or one response's, in the admin's tenant (the bootstrap
    admin names it)."""
    ctx = get_context(request)
    if (body.user is None) == (body.response_id is None):
        raise APIError(400, "Give exactly one of 'user' and 'response_id'.", param="user", code="invalid_value")
    tenant = body.tenant or ctx.tenant or "anonymous"
    platform = ctx.tenant == SYSTEM_TENANT and ctx.role == "admin"
    if body.tenant is not None and body.tenant != ctx.tenant and not platform:
        raise APIError(404, f"No tenant '{body.tenant}' for this key.", param="tenant", code="tenant_not_found")
    service = _feedback(request)
    if body.user is not None:
        erased = await service.erase_user(tenant, body.user)
    else:
        assert body.response_id is not None
        erased = await service.erase_response(tenant, body.response_id)
    return _json({"object": "erasure", "tenant": tenant, "erased": erased})
