"""The one object that follows a request through the gateway.

Middleware creates it (request id, start time); routers add the model; serving adds token counts and the
outcome. Later layers (keys, limits, guards, metrics, audit) read and extend it instead of passing loose values.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from guardserve.app.errors import log_unexpected
from guardserve.guardrails.types import Decision

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id(offered: str | None) -> str:
    """Accept a caller's X-Request-ID if it is short and plain; otherwise make one."""
    if offered and _REQUEST_ID.match(offered):
        return offered
    return uuid.uuid4().hex


@dataclass
class RequestContext:
    request_id: str
    route: str
    started: float = field(default_factory=time.perf_counter)
    created: int = field(default_factory=lambda: int(time.time()))
    response_id: str = ""
    model: str | None = None
    model_version: str | None = None  # which version of the model answered (app.rollout)
    user: str | None = None
    prompt_tokens: int = 0
    counted_prompt_tokens: int | None = None  # the gateway's exact count before admission (the engine's comes later)
    completion_tokens: int = 0
    finish_reason: str | None = None
    first_token_at: float | None = None  # perf_counter of the engine's first output token (streams)
    last_token_at: float | None = None  # perf_counter of the engine's last token (streams)
    first_sent_at: float | None = None  # the first text sent to the client, after the output guards (streams)
    status: int | None = None  # HTTP status sent (499: client went away first)
    disconnected: bool = False  # the client left before the answer was complete
    # The API key's identity (set by guardserve.app.auth before any route runs; never the raw key).
    key_id: str | None = None
    tenant: str | None = None
    role: str | None = None  # "user", "tenant_admin" or "admin"
    admin_action: dict[str, str] | None = None  # what an /admin request did (action, key id, tenant): for the audit
    policy: str | None = None  # guardrails policy: the API key's (None: the default), then the one actually applied
    key_limits: dict[str, int | None] = field(default_factory=dict)  # the key's own limits (app.limits.Limits)
    response_headers: dict[str, str] = field(default_factory=dict)  # added to the response (x-ratelimit-*)
    guard_decisions: list[Decision] = field(default_factory=list)  # types, counts, actions: never values
    # Response records (app.feedback): the key's retention (None: the gateway's default), then the one applied;
    # with "scrubbed" serving keeps what the engine saw and what was sent, for the record's scrubber only.
    retention: str | None = None
    transcript: tuple[tuple[str, str], ...] | None = None  # (role, text) the engine saw, after the input guards
    answer_parts: list[str] | None = None  # the text sent to the client, after the output guards
    _finalizers: list[Callable[[RequestContext], Awaitable[None]]] = field(default_factory=list, repr=False)

    def on_finish(self, finalizer: Callable[[RequestContext], Awaitable[None]]) -> None:
        """Run ``finalizer(ctx)`` once the response is over: sent, failed, or abandoned by the client."""
        self._finalizers.append(finalizer)

    async def finish(self) -> None:
        finalizers, self._finalizers = self._finalizers, []
        for finalizer in reversed(finalizers):
            try:
                await finalizer(self)
            except Exception as exc:
                log_unexpected("request finalizer failed", exc, self.request_id)


def get_context(request: Request) -> RequestContext:
    ctx = getattr(request.state, "ctx", None)
    if ctx is None:
        ctx = RequestContext(request_id=new_request_id(request.headers.get("x-request-id")), route=request.url.path)
        request.state.ctx = ctx
    assert isinstance(ctx, RequestContext)
    return ctx
