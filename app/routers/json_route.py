"""How the OpenAI POST routes read a request: the body parsed once (orjson), validated against the endpoint's
model, the endpoint called, all without FastAPI's per-request machinery.

FastAPI still builds each route (its dependant, its OpenAPI operation: ``/docs`` is unchanged); only
:meth:`JSONBodyRoute.handle` is ours, for an endpoint shaped ``async def endpoint(body: Model, request: Request)``.
What it skips per request: dependency solving (which recomputes whether to embed body fields), a second
``Request``, three ``AsyncExitStack``\\ s and the route-level exception wrapper. py-spy on the auth + limits path
(2026-12-07) put FastAPI's and Starlette's own frames at ~30 % of the gateway's CPU per request, most of it in
that route-level machinery. Errors still go through the app's exception handlers (the app-level
``ExceptionMiddleware`` above the router): a body FastAPI would refuse raises the same
:class:`~fastapi.exceptions.RequestValidationError`, with FastAPI's locations (``("body", ...)``).

Why not FastAPI's own seam for this (``route_class`` with ``get_route_handler``): the handler it returns is still
wrapped in ``request_response`` (the exit stacks, the wrapper and the second ``Request`` stay).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from guardserve.app.protocol import STRICT_JSON


class OrjsonRequest(Request):
    """A request whose JSON body is parsed once: the route validates it and the pass-through forwards that same
    object.

    orjson first. What it refuses but the stdlib reads (NaN, Infinity, numbers beyond a double, lone surrogates)
    is parsed by the stdlib, so that validation can still name the field at fault, and :attr:`not_strict` says
    why orjson refused: such a body is never forwarded, since an upstream could not read it either."""

    not_strict: str | None = None

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                self._json = json.loads(body)  # a JSONDecodeError here: the route's invalid_json
                self.not_strict = str(exc)
        return self._json


Endpoint = Callable[[Any, Request], Coroutine[Any, Any, Response]]


def body_model(endpoint: Callable[..., Any]) -> type[BaseModel] | None:
    """The model of an endpoint shaped ``(body: Model, request: Request)``, else None."""
    hints = typing.get_type_hints(endpoint)
    hints.pop("return", None)
    params = list(hints.items())
    if len(params) != 2 or params[1][1] is not Request:
        return None
    model = params[0][1]
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


async def read_body(request: OrjsonRequest, model: type[BaseModel]) -> BaseModel:
    """The validated body, or FastAPI's RequestValidationError for a missing, unparsable or invalid one."""
    if not await request.body():
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        parsed = await request.json()
    except ValueError as exc:  # json.JSONDecodeError, or a UnicodeDecodeError: bytes that are not UTF-8
        at, why = (exc.pos, exc.msg) if isinstance(exc, json.JSONDecodeError) else (0, "not UTF-8")
        error = {"type": "json_invalid", "loc": ("body", at), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([{**error, "ctx": {"error": why}}]) from None
    try:
        return model.model_validate(parsed, context=None if request.not_strict else STRICT_JSON)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


class JSONBodyRoute(APIRoute):
    """An APIRoute that serves ``(body, request)`` endpoints itself (see the module); other endpoints, routes with
    dependencies, and a method the route does not allow, go to FastAPI as usual. The endpoint returns its
    ``Response`` (``response_model`` and ``status_code`` are for the OpenAPI document only), and dependencies given
    to ``include_router`` are not seen here: give them to the router or the route."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        # a route with dependencies (its own or its router's) needs FastAPI to solve them: it keeps FastAPI's handling
        self.body_model = None if self.dependant.dependencies else body_model(endpoint)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        model = self.body_model
        if model is None or scope["method"] not in (self.methods or ()):
            await super().handle(scope, receive, send)
            return
        request = OrjsonRequest(scope, receive, send)
        endpoint: Endpoint = self.endpoint
        response = await endpoint(await read_body(request, model), request)
        await response(scope, receive, send)
