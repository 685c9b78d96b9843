"""Pure ASGI middleware: authenticate ``/v1/*`` and ``/admin/*`` before routing and body parsing.

It puts the key's identity on the :class:`RequestContext` (never the raw key), refuses keys without an admin role
on ``/admin`` with 403, and adds ``ctx.response_headers`` (the ``x-ratelimit-*`` headers that admission sets) to the
response when it starts, streaming responses included. ``/health``, ``/ready`` and ``/metrics`` stay open.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guardserve.app.auth.records import ADMIN_ROLES, KeyRecord
from guardserve.app.auth.service import KeyService
from guardserve.app.connections import mark_authenticated
from guardserve.app.context import RequestContext
from guardserve.app.errors import INVALID_REQUEST, APIError

PROTECTED = ("/v1", "/admin", "/ui/api")  # the playground's pages are open; what it reads is not
ADMIN = "/admin"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def anonymous() -> KeyRecord:
    """The identity of every request when auth is disabled (a user, never an admin)."""
    return KeyRecord(id="anonymous", hash="", tenant="anonymous", role="user")


class AuthMiddleware:
    def __init__(self, app: ASGIApp, keys: KeyService | None) -> None:
        self.app = app
        self.keys = keys  # None: auth disabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not any(_under(path, p) for p in PROTECTED):
            await self.app(scope, receive, send)
            return
        ctx: RequestContext = scope["state"]["ctx"]
        try:
            if self.keys is None:
                record = anonymous()
            else:
                record = await self.keys.authenticate(Headers(scope=scope).get("authorization"))
                mark_authenticated(scope)  # its connection leaves the per-IP unauthenticated cap
            if _under(path, ADMIN) and record.role not in ADMIN_ROLES:
                raise APIError(
                    403,
                    "This API key may not use the admin API (role 'admin' or 'tenant_admin' required).",
                    type=INVALID_REQUEST,
                    code="insufficient_permissions",
                )
        except APIError as exc:
            await exc.response()(scope, receive, send)
            return
        ctx.key_id, ctx.tenant, ctx.role, ctx.policy = record.id, record.tenant, record.role, record.policy
        ctx.key_limits = record.limits.model_dump(exclude_none=True)
        ctx.retention = record.retention

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and ctx.response_headers:
                extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in ctx.response_headers.items()]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
