"""JSONBodyRoute: the body read and validated by the route itself, errors as FastAPI gives them, and routes it
must leave to FastAPI (no body model, dependencies, a method the route does not serve)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from guardserve.app.errors import install_error_handlers
from guardserve.app.protocol import RequestBody
from guardserve.app.routers.json_route import JSONBodyRoute, OrjsonRequest, body_model


class Body(RequestBody):
    name: str
    count: int = 1


seen: list[Any] = []


def _app() -> FastAPI:
    return _build(APIRouter(route_class=JSONBodyRoute))


def _build(router: APIRouter) -> FastAPI:

    @router.post("/lean")
    async def lean(body: Body, request: Request) -> Response:
        seen.append((type(request), await request.json()))
        return JSONResponse({"name": body.name, "count": body.count})

    def dependency(request: Request) -> str:
        seen.append("dependency ran")
        return "x"

    @router.post("/with-dependency")
    async def with_dependency(body: Body, request: Request, value: str = Depends(dependency)) -> Response:
        return JSONResponse({"value": value})

    @router.get("/no-body")
    async def no_body(request: Request) -> Response:
        return JSONResponse({"ok": True})

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    return app


def test_the_route_validates_its_body_and_hands_the_parsed_json_on() -> None:
    seen.clear()
    with TestClient(_app()) as client:
        response = client.post("/lean", content=b'{"name": "a", "count": 3, "extra": [1]}')
        assert response.status_code == 200 and response.json() == {"name": "a", "count": 3}
        kind, parsed = seen[0]
        assert kind is OrjsonRequest and parsed == {"name": "a", "count": 3, "extra": [1]}  # parsed once, kept


def test_errors_are_fastapis_in_the_openai_envelope() -> None:
    with TestClient(_app()) as client:
        cases = {
            b"": "invalid_json",
            b"{nope": "invalid_json",
            b"\xc7v": "invalid_json",
            b"[1]": "invalid_json",
            b'{"count": 2}': "missing_required_parameter",
            b'{"name": 5}': "invalid_type",
            b'{"name": "\\ud800"}': "invalid_value",  # the stdlib parses the lone surrogate: the model refuses it
        }
        for raw, code in cases.items():
            response = client.post("/lean", content=raw)
            assert response.status_code == 400, (raw, response.text)
            assert response.json()["error"]["code"] == code, (raw, response.text)
        assert client.post("/lean", content=b'{"count": 2}').json()["error"]["param"] == "name"
        assert client.get("/lean").status_code == 405  # a method the route does not serve: FastAPI's answer


def test_routes_with_dependencies_or_no_body_stay_with_fastapi() -> None:
    router = APIRouter(route_class=JSONBodyRoute)
    app = _build(router)
    routes = {r.path: r for r in router.routes if isinstance(r, JSONBodyRoute)}
    assert routes["/lean"].body_model is Body
    assert routes["/with-dependency"].body_model is None and routes["/no-body"].body_model is None
    seen.clear()
    with TestClient(app) as client:
        assert client.post("/with-dependency", json={"name": "a"}).json() == {"value": "x"}
        assert seen == ["dependency ran"]
        assert client.get("/no-body").json() == {"ok": True}


def test_body_model_reads_the_endpoint_signature() -> None:
    async def shaped(body: Body, request: Request) -> Response: ...
    async def reversed_(request: Request, body: Body) -> Response: ...
    async def not_a_model(body: dict[str, Any], request: Request) -> Response: ...

    assert body_model(shaped) is Body
    assert body_model(reversed_) is None and body_model(not_a_model) is None
    assert issubclass(Body, BaseModel)
