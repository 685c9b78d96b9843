"""The served OpenAPI schema (``/openapi.json``, ``/docs``, ``/redoc``), true to what the gateway answers.

FastAPI documents a 422 ``HTTPValidationError`` for every route that takes input; this gateway answers invalid
input with a 400 in OpenAI's error envelope (:mod:`app.errors`). So each such route documents a 400 and, for the
other errors it may answer (401, 403, 404, 405, 413, 429, 503, ...), a ``default`` response with the same envelope.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from guardserve.app.protocol import ErrorResponse

_REF = "#/components/schemas/{model}"
_ERROR = {"application/json": {"schema": {"$ref": _REF.format(model="ErrorResponse")}}}
_UNUSED = ("HTTPValidationError", "ValidationError")
_OPEN = ("/health", "/ready", "/metrics")  # probes and scrapes: no error envelope


def gateway_schema(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes, description=app.description)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error_schema = ErrorResponse.model_json_schema(ref_template=_REF)
    components.update(error_schema.pop("$defs", {}))
    components["ErrorResponse"] = error_schema
    for name in _UNUSED:
        components.pop(name, None)
    for path, operations in schema.get("paths", {}).items():
        if path in _OPEN:
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["400"] = {"description": "Invalid request", "content": _ERROR}
            responses["default"] = {"description": "Error", "content": _ERROR}
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`gateway_schema` (built once, on first request) instead of FastAPI's default."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = gateway_schema(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
