"""``/admin/keys``: create, list, show, revoke and rotate API keys; ``/admin/usage``: their use of their limits.
Admin roles only (the auth middleware checks).

A created or rotated key is returned once, in ``key``; only its keyed hash is stored.

Scope: an ``admin`` key manages every tenant. A ``tenant_admin`` key manages its own tenant's keys and nothing
else: it may not create keys in another tenant or an ``admin`` key (403), nor list another tenant (403), and a key
of another tenant, or an admin key, is to it exactly as a key that does not exist (404, the same message), so the
API is no oracle for what exists elsewhere. Every action is recorded for the audit line (``ctx.admin_action``).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from pydantic import ConfigDict, Field
from starlette.responses import Response

from guardserve.app.auth.records import NAME_PATTERN, KeyRecord, Role
from guardserve.app.auth.service import KeyService
from guardserve.app.context import RequestContext, get_context
from guardserve.app.errors import APIError
from guardserve.app.feedback.model import Retention
from guardserve.app.limits.settings import Limits
from guardserve.app.protocol import RequestBody
from guardserve.guardrails.runtime import PolicyNotAllowedError, UnknownPolicyError
from guardserve.models.registry import RegistryError

router = APIRouter(prefix="/admin")


class CreateKey(RequestBody):
    model_config = ConfigDict(extra="forbid", strict=True)

    tenant: str = Field(pattern=NAME_PATTERN)
    role: Role = "user"
    policy: str | None = Field(None, pattern=NAME_PATTERN)  # guardrail policy; None: the gateway's default
    name: str = Field("", max_length=200)
    limits: Limits = Limits()
    expires_in: int | None = Field(None, gt=0, le=10 * 365 * 86_400)  # seconds from now
    retention: Retention | None = None  # response records (off|metadata|scrubbed); None: the gateway's default


class RotateKey(RequestBody):
    model_config = ConfigDict(extra="forbid", strict=True)

    grace_seconds: int = Field(0, ge=0, le=30 * 86_400)  # the old key keeps working this long


def _forbidden(message: str) -> APIError:
    return APIError(403, message, code="insufficient_permissions")


def _caller(request: Request) -> RequestContext:
    return get_context(request)


def _visible(ctx: RequestContext, record: KeyRecord | None) -> KeyRecord | None:
    """The record if the caller may see it (None otherwise, as for a key that does not exist)."""
    if record is None or ctx.role == "admin":
        return record
    return record if record.tenant == ctx.tenant and record.role != "admin" else None


def _audit(ctx: RequestContext, action: str, key_id: str | None = None, tenant: str | None = None) -> None:
    ctx.admin_action = {
        "action": action,
        **({"key_id": key_id} if key_id else {}),
        **({"tenant": tenant} if tenant else {}),
    }


def _readable_tenant(ctx: RequestContext, action: str, tenant: str | None, may: str) -> str | None:
    """The tenant a read covers: as asked for an admin (None: all); a tenant admin's own (403 for another)."""
    _audit(ctx, action, tenant=tenant)
    if ctx.role == "admin":
        return tenant
    if tenant not in (None, ctx.tenant):
        raise _forbidden(f"A tenant admin key may only {may}.")
    return ctx.tenant


async def _found(request: Request, key_id: str, action: str) -> KeyRecord:
    ctx = _caller(request)
    _audit(ctx, action, key_id)
    record = _visible(ctx, await _keys(request).get(key_id))
    if record is None:
        raise _not_found(key_id)
    return record


def _keys(request: Request) -> KeyService:
    keys: KeyService | None = request.app.state.access.keys
    if keys is None:
        raise APIError(404, "API keys are disabled on this gateway (auth.enabled=false).", code="auth_disabled")
    return keys


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _not_found(key_id: str) -> APIError:
    return APIError(404, f"No API key with id '{key_id}'.", param="key_id", code="key_not_found")


def _with_key(key: str, record: KeyRecord) -> dict[str, Any]:
    return {**record.public(), "key": key}


def _check_policy(request: Request, policy: str | None) -> None:
    """A key may only name a policy the guardrails know (when they are on)."""
    guardrails = request.app.state.services.guardrails
    if policy is not None and guardrails is not None and policy not in guardrails.policies:
        known = ", ".join(sorted(guardrails.policies))
        message = f"Unknown guardrails policy '{policy}' (known: {known})."
        raise APIError(400, message, param="policy", code="invalid_value")


def _within_own_policy(request: Request, ctx: RequestContext, policy: str | None) -> None:
    """A tenant admin's keys screen at least as strictly as its own (a weaker policy would escape its own bounds)."""
    guardrails = request.app.state.services.guardrails
    if guardrails is None:  # strictness cannot be judged: only its own policy
        if policy != ctx.policy:
            raise _forbidden(
                f"A tenant admin key may only create keys with its own policy ({ctx.policy or 'default'})."
            )
        return
    try:
        guardrails.resolve(ctx.policy, policy or guardrails.default_name)
    except (PolicyNotAllowedError, UnknownPolicyError) as exc:
        raise _forbidden(f"A tenant admin key may not create a key with this policy: {exc}.") from exc


def _within_own_limits(ctx: RequestContext, limits: Limits) -> None:
    """Nor more than it may use itself: every limit its own key has, the new key has too, at most as high."""
    asked = limits.model_dump()
    for name, own in (ctx.key_limits or {}).items():
        if own and not (asked.get(name) and asked[name] <= own):
            raise _forbidden(f"A tenant admin key may not create a key above its own limit {name}={own}.")


@router.post("/keys", status_code=201)
async def create_key(body: CreateKey, request: Request) -> Response:
    ctx = _caller(request)
    _audit(ctx, "create", tenant=body.tenant)
    if ctx.role != "admin":
        if body.tenant != ctx.tenant:
            raise _forbidden("A tenant admin key may only create keys in its own tenant.")
        if body.role == "admin":
            raise _forbidden("A tenant admin key may not create admin keys.")
        _within_own_policy(request, ctx, body.policy)
        _within_own_limits(ctx, body.limits)
    _check_policy(request, body.policy)
    expires_at = int(time.time()) + body.expires_in if body.expires_in else None
    key, record = await _keys(request).create(
        body.tenant, body.role, body.policy, body.name, body.limits, expires_at, body.retention
    )
    _audit(ctx, "create", record.id, record.tenant)
    return _json(_with_key(key, record), status=201)


@router.get("/keys")
async def list_keys(request: Request, tenant: str | None = None) -> Response:
    ctx = _caller(request)
    tenant = _readable_tenant(ctx, "list", tenant, "list its own tenant's keys")
    records = [r for r in await _keys(request).list(tenant) if _visible(ctx, r) is not None]
    return _json({"object": "list", "data": [r.public() for r in records]})


@router.get("/keys/{key_id}")
async def get_key(key_id: str, request: Request) -> Response:
    return _json((await _found(request, key_id, "get")).public())


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, request: Request) -> Response:
    await _found(request, key_id, "revoke")
    record = await _keys(request).revoke(key_id)
    if record is None:
        raise _not_found(key_id)
    return _json(record.public())


@router.post("/keys/{key_id}/rotate", status_code=201)
async def rotate_key(key_id: str, request: Request, body: RotateKey | None = None) -> Response:
    await _found(request, key_id, "rotate")
    rotated = await _keys(request).rotate(key_id, body.grace_seconds if body else 0)
    if rotated is None:
        raise _not_found(key_id)
    _audit(_caller(request), "rotate", key_id, rotated[1].tenant)
    return _json(_with_key(*rotated), status=201)


USAGE_KEYS_MAX = 1000  # keys per usage answer (one Redis script call reads them all)


@router.get("/usage")
async def usage(request: Request, tenant: str | None = None) -> Response:
    """Each key's (and its tenant's) use of its limits now, as the limiter counts it: requests and tokens in the
    last minute, concurrency slots held, tokens this UTC day, beside the limits that apply. A dimension without a
    limit is not counted (0). A tenant admin sees its own tenant only."""
    ctx = _caller(request)
    tenant = _readable_tenant(ctx, "usage", tenant, "read its own tenant's usage")
    access = request.app.state.access
    if access.limiter is None:
        raise APIError(404, "Rate limits are disabled on this gateway (limits.enabled=false).", code="limits_disabled")
    settings = access.settings.limits
    records = [r for r in await _keys(request).list(tenant) if _visible(ctx, r) is not None and r.state() == "active"]
    records = records[:USAGE_KEYS_MAX]
    rows: list[dict[str, Any]] = []
    for name in sorted({r.tenant for r in records} | ({tenant} if tenant else set())):
        mine = [r for r in records if r.tenant == name]
        scopes: list[tuple[Literal["key", "tenant"], str]] = [("tenant", name), *(("key", r.id) for r in mine)]
        used = await access.limiter.usage(name, scopes)
        limits = [settings.tenant_limits(name), *(r.limits.over(settings.key_defaults) for r in mine)]
        for (kind, scope_id), counted, applies in zip(scopes, used, limits, strict=True):
            row = {"tenant": name, "scope": kind, "limits": applies.model_dump(), "usage": asdict(counted)}
            if kind == "key":
                record = next(r for r in mine if r.id == scope_id)
                row |= {"key_id": record.id, "name": record.name, "role": record.role}
            rows.append(row)
    return _json({"object": "list", "limiter": access.limiter.name, "data": rows})


@router.post("/models/reload")
async def reload_models(request: Request) -> Response:
    """Apply the model registry as it is now, without a restart (app/model_set.py): versions whose entry changed
    or is new start, unchanged ones keep running, removed ones finish the requests already on them first."""
    ctx = _caller(request)
    _audit(ctx, "models_reload")
    if ctx.role != "admin":
        raise _forbidden("Only an admin key may reload the model registry.")
    try:
        changes = await request.app.state.model_set.reload()
    except (RegistryError, RuntimeError) as exc:  # a bad registry or an engine that would not start: nothing changed
        raise APIError(409, f"The registry was not reloaded: {exc}", code="registry_not_reloaded") from None
    versions = {
        name: [served.entry.version]
        + ([canary.served.entry.version] if (canary := request.app.state.canaries.get(name)) else [])
        for name, served in request.app.state.models.items()
    }
    return Response(orjson.dumps({**changes, "models": versions}), media_type="application/json")
