"""Pure ASGI middleware (no BaseHTTPMiddleware: it buffers and breaks streaming cancellation).

* :class:`RequestContextMiddleware` gives every HTTP request a :class:`RequestContext`, echoes ``X-Request-ID`` and
  adds the security headers (:func:`security_headers`).
* :class:`BodyLimitMiddleware` answers 413 for bodies over the limit, by ``Content-Length`` up front or by
  counting chunked bodies as they arrive, and 408 for a body that stops arriving (slow clients hold no slot).
* :class:`JSONBodyMiddleware` reads every request body as JSON, whatever its ``Content-Type`` says (as OpenAI
  does): ``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``, and without it FastAPI would hand the
  routes raw bytes ("The request body must be a JSON object." for a valid object).
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guardserve.app.context import RequestContext, new_request_id
from guardserve.app.errors import APIError


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id(Headers(scope=scope).get("x-request-id"))
        ctx = RequestContext(request_id=request_id, route=scope["path"])
        scope.setdefault("state", {})["ctx"] = ctx
        raw_id = request_id.encode()
        api = scope["path"].startswith(("/v1/", "/admin/"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                ctx.status = message["status"]
                headers = message.get("headers", [])
                message["headers"] = [*headers, (b"x-request-id", raw_id), *security_headers(headers, api)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            await ctx.finish()


_ALWAYS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
_NO_STORE = (b"cache-control", b"no-store")
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


def security_headers(headers: list[tuple[bytes, bytes]], api: bool) -> list[tuple[bytes, bytes]]:
    """``nosniff`` and no referrer on everything; API answers are never cached (unless the route says otherwise,
    as streams do) and get a CSP that allows nothing (HTML pages set their own)."""
    names = {name.lower() for name, _ in headers}
    extra = list(_ALWAYS)
    if api and b"cache-control" not in names:
        extra.append(_NO_STORE)
    if b"content-security-policy" not in names and not any(
        name.lower() == b"content-type" and value.startswith(b"text/html") for name, value in headers
    ):
        extra.append(_API_CSP)
    return extra


def _too_large(limit: int) -> APIError:
    return APIError(413, f"Request body is larger than the {limit}-byte limit.", code="request_too_large")


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` while the app reads the body; FastAPI re-raises HTTPExceptions as they are."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_too_large(limit).message)


_JSON = b"application/json"
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == _JSON or (media.startswith(b"application/") and media.endswith(b"+json"))


class JSONBodyMiddleware:
    """Every body is JSON (no route takes forms or files): a missing or other ``Content-Type`` becomes
    ``application/json``, so the body is parsed, and a body that is not JSON gets the usual ``invalid_json`` 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in _BODILESS:
            types = [v for k, v in scope["headers"] if k == b"content-type"]
            if not (len(types) == 1 and _is_json(types[0])):
                kept = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                scope = {**scope, "headers": [*kept, (b"content-type", _JSON)]}
        await self.app(scope, receive, send)


class BodyTimeoutError(HTTPException):
    """The client stopped sending its body (a slow or stalled upload): 408, and the request's slot is freed."""

    def __init__(self, seconds: float) -> None:
        super().__init__(status_code=408, detail=f"The request body did not arrive within {seconds:g} s.")


class BodyLimitMiddleware:
    """413 past ``max_bytes``; 408 when the whole body has not arrived ``timeout`` seconds after the app first
    asked for it (a deadline for the body, not for each piece: a client dripping a byte a second is cut off too)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _too_large(self.max_bytes).response()(scope, receive, send)
            return
        seen = 0
        deadline: float | None = None
        body_done = scope.get("method") in _BODILESS

        async def counting_receive() -> Message:
            nonlocal seen, body_done, deadline
            if body_done:  # after the body: only a disconnect can come, whenever it does
                return await receive()
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.timeout
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeoutError(self.timeout) from None
            body_done = message["type"] != "http.request" or not message.get("more_body", False)
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)
