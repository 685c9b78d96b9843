"""The audit log: one JSON line per API request (``/v1/*``, ``/admin/*``) to its own sink, apart from the logs.

Sink (``GUARDSERVE_OBSERVABILITY__AUDIT_LOG``): ``stderr`` (default), ``off``, or a file path (appended, one line
per request, flushed per line). Fields, in this order:

==================== ==========================================================================================
``ts``               when the request ended (UTC, ISO 8601, milliseconds)
``level``            ``info``; with ``logger`` ``guardserve.audit`` and ``message`` ``audit``: on stderr an
                     audit line has the shape of a JSON log line, and shippers can route it by ``logger``
``request_id``       the request id (``X-Request-ID``)
``method``           the HTTP method
``route``            the route template (``/v1/feedback/{feedback_id}``; ``unmatched`` for unknown URLs)
``status``           the HTTP status sent (499: the client left first)
``key_id``           the API key's id (never the key); ``null`` when unauthenticated
``tenant``           the key's tenant
``model``            the served model (registry name), for completions
``checkpoint``       the model's checkpoint sha256 when known
``response_id``      the ``chatcmpl-…`` / ``cmpl-…`` id the client got
``finish_reason``    the completion's finish reason
``prompt_tokens``    token counts
``completion_tokens``
``guards``           one entry per guard decision: ``guard``, ``stage``, ``action``, ``entities`` (type -> count)
``latency_ms``       from the request's arrival to the end of its response
==================== ==========================================================================================

Never the prompt, the answer, a matched value, the ``user`` field, a header or an API key.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from guardserve.app.context import RequestContext
from guardserve.app.observability.labels import UNMATCHED, status_label

AUDITED = ("/v1", "/admin")


def audit_entry(ctx: RequestContext, method: str, route: str, checkpoint: str | None) -> dict[str, Any]:
    return {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "info",
        "logger": "guardserve.audit",
        "message": "audit",
        "request_id": ctx.request_id,
        "method": method,
        "route": route,
        "status": int(status_label(ctx.status, ctx.disconnected)),
        "key_id": ctx.key_id,
        "tenant": ctx.tenant,
        "model": ctx.model,
        "model_version": ctx.model_version,
        "checkpoint": checkpoint,
        "response_id": ctx.response_id or None,
        "finish_reason": ctx.finish_reason,
        "prompt_tokens": ctx.prompt_tokens,
        "completion_tokens": ctx.completion_tokens,
        "guards": [
            {
                "guard": d.guard,
                "stage": d.stage.value,
                "action": "error" if d.error else d.action.value,
                "entities": d.entity_counts(),
            }
            for d in ctx.guard_decisions
        ],
        "latency_ms": round((time.perf_counter() - ctx.started) * 1000, 1),
        **({"role": ctx.role, "admin": ctx.admin_action} if ctx.admin_action is not None else {}),
    }


class AuditLog:
    """Writes audit lines to a sink: ``stderr``, ``off`` or a file path (opened on first write)."""

    def __init__(self, sink: str = "stderr") -> None:
        self.sink = sink
        self._stream: IO[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.sink != "off"

    def _file(self) -> IO[bytes]:
        if self._stream is None:
            path = Path(self.sink)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = path.open("ab")
        return self._stream

    def write(self, entry: dict[str, Any]) -> None:
        line = orjson.dumps(entry) + b"\n"
        with self._lock:
            if self.sink == "stderr":  # looked up each time: whoever replaced sys.stderr gets the line
                sys.stderr.write(line.decode())
                sys.stderr.flush()
            else:
                stream = self._file()
                stream.write(line)
                stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._stream is not None and self.sink not in ("stderr", "off"):
                self._stream.close()
            self._stream = None


class AuditMiddleware:
    """Registers the audit line as a request finalizer (inside the observability middleware, so the context exists
    and the route is resolved by the time it runs)."""

    def __init__(self, app: ASGIApp, audit: AuditLog, checkpoint: Callable[[RequestContext], str | None]) -> None:
        self.app = app
        self.audit = audit
        self.checkpoint = checkpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx = scope.get("state", {}).get("ctx") if scope["type"] == "http" else None
        path = scope.get("path", "")
        if not self.audit.enabled or not isinstance(ctx, RequestContext) or not path.startswith(AUDITED):
            await self.app(scope, receive, send)
            return

        async def finished(ctx: RequestContext) -> None:
            template = getattr(scope.get("route"), "path_format", None)
            route = template if isinstance(template, str) else UNMATCHED
            self.audit.write(audit_entry(ctx, scope["method"], route, self.checkpoint(ctx)))

        ctx.on_finish(finished)
        await self.app(scope, receive, send)
