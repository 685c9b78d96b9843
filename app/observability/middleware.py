"""Per-request observability, pure ASGI: the request span, the request id in logs, metrics and the access line.

Sits inside :class:`~guardserve.app.middleware.RequestContextMiddleware` (the context exists) and outside the body limit
(a 413 is counted). Metrics and the access line are recorded by a request finalizer registered first, so it runs
last, once the response is over however it ended, with the final status and token counts.

Labels come from the route *template* (``/v1/models/{model_id}``; a URL that matches no route is ``unmatched``),
the registry's model names and the status code; the access line likewise never carries the raw path or query.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from guardserve.app.context import RequestContext
from guardserve.app.observability.core import Observability
from guardserve.app.observability.labels import UNMATCHED, status_label
from guardserve.app.observability.logs import request_id_var
from guardserve.app.observability.metrics import time_to_first_token

access_log = logging.getLogger("guardserve.access")

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteTemplates:
    """Route templates for labels: ``/v1/models/{model_id}``, never the raw path; ``unmatched`` for unknown URLs."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._routes = routes  # the app's list, complete by the first request
        self._table: list[tuple[re.Pattern[str], str]] | None = None

    def __call__(self, scope: Scope) -> str:
        template = getattr(scope.get("route"), "path_format", None)
        if isinstance(template, str):
            return template
        # Answered before routing (the body limit's 413): find the route the request was for by its path.
        if self._table is None:
            self._table = _walk(self._routes)
        path = scope["path"]
        for regex, found in self._table:
            if regex.match(path):
                return found
        return UNMATCHED


def _walk(routes: Iterable[object]) -> list[tuple[re.Pattern[str], str]]:
    """Every route's path regex and template, included routers walked (duck-typed: FastAPI wraps them)."""
    table: list[tuple[re.Pattern[str], str]] = []
    for route in routes:
        regex, template = getattr(route, "path_regex", None), getattr(route, "path_format", None)
        if isinstance(regex, re.Pattern) and isinstance(template, str):
            table.append((regex, template))
        for nested in (
            getattr(route, "routes", None),
            getattr(getattr(route, "original_router", None), "routes", None),
        ):
            if isinstance(nested, list):
                table.extend(_walk(nested))
    return table


class ObservabilityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        observability: Observability,
        routes: Sequence[BaseRoute],
    ) -> None:
        self.app = app
        self.observability = observability
        self.route_template = RouteTemplates(routes)
        # Scrapes are not traffic (when /metrics is on the API port; elsewhere it is an unknown URL here).
        self.skip_paths = frozenset({"/metrics"} if observability.serves_metrics_route else ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = scope.get("state", {}).get("ctx") if scope["type"] == "http" else None
        if not isinstance(ctx, RequestContext) or scope["path"] in self.skip_paths:
            await self.app(scope, receive, send)
            return
        metrics = self.observability.metrics
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        token = request_id_var.set(ctx.request_id)
        if metrics is not None:
            metrics.request_started()

        async def finished(ctx: RequestContext) -> None:
            route = self.route_template(scope)
            if metrics is not None:
                metrics.request_finished(ctx, route)
            _access_line(ctx, method, route)

        ctx.on_finish(finished)
        attributes = {"http.request.method": method, "guardserve.request_id": ctx.request_id}
        try:
            with self.observability.tracer.span("guardserve.request", attributes, server=True) as span:
                await self.app(scope, receive, send)
                span.set_attribute("http.route", self.route_template(scope))
                span.set_attribute("http.response.status_code", int(status_label(ctx.status, ctx.disconnected)))
                if ctx.model is not None:
                    span.set_attribute("guardserve.model", ctx.model)
        finally:
            request_id_var.reset(token)


def _access_line(ctx: RequestContext, method: str, route: str) -> None:
    status = status_label(ctx.status, ctx.disconnected)
    fields: dict[str, Any] = {
        "request_id": ctx.request_id,
        "method": method,
        "route": route,
        "status": int(status),
        "model": ctx.model,
        "duration_ms": round((time.perf_counter() - ctx.started) * 1000, 1),
    }
    if ctx.model is not None:
        ttft = time_to_first_token(ctx)
        fields.update(
            prompt_tokens=ctx.prompt_tokens,
            completion_tokens=ctx.completion_tokens,
            finish_reason=ctx.finish_reason,
            ttft_ms=None if ttft is None else round(ttft * 1000, 1),
        )
    if ctx.disconnected:
        fields["disconnected"] = True
    access_log.info("%s %s %s", method, route, status, extra=fields)
