"""One error envelope for everything: ``{"error": {"message", "type", "param", "code"}}`` as OpenAI sends it.

Handlers turn request validation failures, unknown routes, oversized bodies, engine failures and our own
:class:`APIError` into that envelope with the right status. Client input never produces a 500.
"""

from __future__ import annotations

import logging
import math
import traceback
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from guardserve.models.engine import (
    EngineError,
    EngineTimeoutError,
    EngineUnavailableError,
    InvalidRequestError,
    UpstreamError,
)
from guardserve.models.unicode import valid_unicode

log = logging.getLogger(__name__)

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        message, param, code = valid_unicode(message), _valid_or_none(param), _valid_or_none(code)
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> Response:
        return Response(
            content=orjson.dumps(self.body()),
            status_code=self.status,
            headers=self.headers,
            media_type="application/json",
        )


def _valid_or_none(text: str | None) -> str | None:
    return None if text is None else valid_unicode(text)


class ClientDisconnectedError(Exception):
    """The client went away before we answered; nothing is sent."""


def from_engine_error(exc: EngineError) -> APIError:
    if isinstance(exc, InvalidRequestError):
        return APIError(exc.status, exc.message, param=exc.param, code=exc.code)
    if isinstance(exc, EngineUnavailableError):
        retry = str(max(1, math.ceil(exc.retry_after)))
        return APIError(503, exc.message, type=SERVER_ERROR, code="engine_unavailable", headers={"Retry-After": retry})
    if isinstance(exc, EngineTimeoutError):
        return APIError(504, exc.message, type=SERVER_ERROR, code="engine_timeout")
    if isinstance(exc, UpstreamError):
        return APIError(502, exc.message, type=SERVER_ERROR, code="upstream_error")
    return APIError(500, "The engine failed while serving this request.", type=SERVER_ERROR, code="engine_error")


def _branch(part: str) -> bool:
    return "[" in part or part[:1].isupper()


def from_validation_error(exc: RequestValidationError) -> APIError:
    errors = exc.errors()
    if not errors:
        return APIError(400, "Invalid request body.", code="invalid_request")
    # Our validators' messages say most (a union's other branches only say "should be a valid string").
    err = next((e for e in errors if e.get("type") == "value_error"), errors[0])
    kind = str(err.get("type", ""))
    # A union's branch shows in the location as its type ("list[TextPart]", "TextPart"): not a parameter name.
    loc = [str(p) for p in err.get("loc", ()) if p != "body" and not (isinstance(p, str) and _branch(p))]
    param = ".".join(loc) or None
    if kind == "json_invalid":
        return APIError(400, f"The request body is not valid JSON: {err.get('msg', '')}.", code="invalid_json")
    if kind == "missing" and not loc:
        return APIError(400, "The request body is empty: it must be a JSON object.", code="invalid_json")
    if kind == "missing":
        return APIError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    if kind in ("model_type", "model_attributes_type", "dict_type") and not loc:
        return APIError(400, "The request body must be a JSON object.", code="invalid_json")
    code = "invalid_type" if kind.endswith(("_type", "_parsing")) else "invalid_value"
    message = f"Invalid value for '{param}': {err.get('msg', 'invalid')}." if param else f"{err.get('msg')}."
    return APIError(400, message, param=param, code=code)


_STATUS_MESSAGES = {
    404: ("Unknown request URL: {method} {path}.", "unknown_url"),
    405: ("Method {method} is not allowed for {path}.", "method_not_allowed"),
    408: ("{detail}", "request_timeout"),
    413: ("{detail}", "request_too_large"),
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> Response:
        return exc.response()

    @app.exception_handler(EngineError)
    async def _engine_error(request: Request, exc: EngineError) -> Response:
        return from_engine_error(exc).response()

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return from_validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        template, code = _STATUS_MESSAGES.get(exc.status_code, ("{detail}", None))
        message = template.format(method=request.method, path=request.url.path, detail=exc.detail)
        return APIError(exc.status_code, message, code=code, headers=dict(exc.headers or {})).response()

    @app.exception_handler(ClientDisconnectedError)
    async def _disconnected(request: Request, exc: ClientDisconnectedError) -> Response:
        return Response(status_code=499)  # nginx's "client closed request"; never reaches the client

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log_unexpected("unhandled error", exc, getattr(request.state, "request_id", None))
        return APIError(500, "Internal server error.", type=SERVER_ERROR, code="internal_error").response()


def log_unexpected(what: str, exc: BaseException, request_id: str | None) -> None:
    """A bug's type and where it happened, never its message: an exception's text can hold a prompt's or an
    answer's words (a guard, the detokenizer, the pseudonymizer failing on them), and logs must hold no PII."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("%s: %s\n%s", what, type(exc).__name__, frames, extra={"request_id": request_id})
