"""Request context middleware: X-Request-ID, status capture, finalizers that run once whatever happens."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from guardserve.app.context import RequestContext, get_context
from guardserve.app.middleware import RequestContextMiddleware

seen: list[tuple[str, int | None]] = []


async def record(ctx: RequestContext) -> None:
    seen.append((ctx.route, ctx.status))


async def plain(request: Request) -> Response:
    get_context(request).on_finish(record)
    return PlainTextResponse("ok")


async def streamed(request: Request) -> Response:
    get_context(request).on_finish(record)

    async def body() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    return StreamingResponse(body())


async def broken(request: Request) -> Response:
    get_context(request).on_finish(record)
    raise RuntimeError("boom")


def client() -> TestClient:
    routes = [Route("/plain", plain), Route("/stream", streamed), Route("/broken", broken)]
    app = RequestContextMiddleware(Starlette(routes=routes))
    return TestClient(app, raise_server_exceptions=False)  # type: ignore[arg-type]


def test_finalizers_run_once_with_the_status() -> None:
    seen.clear()
    with client() as c:
        assert c.get("/plain").headers["x-request-id"]
        assert c.get("/stream").text == "ab"
        assert c.get("/broken").status_code == 500
    assert seen == [("/plain", 200), ("/stream", 200), ("/broken", 500)]


def test_request_id_is_kept_when_plain() -> None:
    with client() as c:
        assert c.get("/plain", headers={"X-Request-ID": "abc-1"}).headers["x-request-id"] == "abc-1"
