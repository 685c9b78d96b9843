"""The :class:`app.services.Admission` the serving layer calls: rate limits per key and per tenant.

Per request: count the prompt with the served model's tokenizer, reserve ``prompt + max_tokens`` (what the
request may at most use) together with a request and a concurrency slot, in one limiter call; refuse with 429
(or 503 when Redis is down in fail_closed mode); put ``x-ratelimit-*`` headers on the response; and, when the
response is over however it ended, settle: free the slot and replace the reservation with the tokens used.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable

from app.context import RequestContext
from app.errors import SERVER_ERROR, APIError
from app.limits.counting import TokenCounters
from app.limits.events import METRIC_LIMITS, LimitEvents
from app.limits.headers import duration, rate_limit_headers
from app.limits.model import Ask, Decision, Lease, RateLimiter, Scope
from app.limits.settings import Limits, LimitSettings
from app.store.backend import BackendUnavailableError
from models.engine import GenerationRequest
from models.registry import ServedModel

ANONYMOUS = "anonymous"  # key and tenant of requests when auth is disabled
RATE_LIMITED = "rate_limit_exceeded"

_WHAT = {
    "requests": "requests per minute",
    "tokens": "tokens per minute",
    "concurrent": "concurrent requests",
    "tokens_per_day": "tokens per day",
}


class RateLimitAdmission:
    def __init__(
        self,
        limiter: RateLimiter,
        settings: LimitSettings,
        counters: TokenCounters | None = None,
        events: LimitEvents | None = None,
        unavailable_retry_s: int = 1,
    ) -> None:
        self.limiter = limiter
        self.settings = settings
        self.counters = counters or TokenCounters(settings.estimate_chars_per_token, settings.count_in_thread_chars)
        self.events = events or LimitEvents(lambda: limiter.degraded)
        self.unavailable_retry_s = unavailable_retry_s
        self._pending: set[asyncio.Future[None]] = set()  # releases of abandoned admissions, kept referenced

    @property
    def degraded(self) -> bool:
        return self.limiter.degraded

    def scopes(self, ctx: RequestContext) -> tuple[str, tuple[Scope, ...]]:
        tenant = ctx.tenant or ANONYMOUS
        key = Limits.model_validate(ctx.key_limits).over(self.settings.key_defaults)
        scopes = (
            Scope("key", ctx.key_id or ANONYMOUS, key),
            Scope("tenant", tenant, self.settings.tenant_limits(tenant)),
        )
        return tenant, tuple(s for s in scopes if not s.limits.unlimited)

    async def admit(self, ctx: RequestContext, served: ServedModel, request: GenerationRequest) -> None:
        tenant, scopes = self.scopes(ctx)
        if not scopes:
            return
        counts_tokens = any(s.limits.tokens_per_minute or s.limits.tokens_per_day for s in scopes)
        prompt = await self.counters.count(served, request) if counts_tokens else 0
        max_new = request.sampling.max_tokens
        cost = prompt + max(0, served.context_length - prompt if max_new is None else max_new) if counts_tokens else 0
        ask = Ask(uuid.uuid4().hex, tenant, scopes, cost)
        deciding = asyncio.ensure_future(self.limiter.acquire(ask))
        try:
            decision = await asyncio.shield(deciding)
        except asyncio.CancelledError:
            deciding.add_done_callback(self._release_abandoned)  # the client left mid-decision: give it back
            raise
        except BackendUnavailableError:
            self.events.decision("all", "fail_closed")
            raise APIError(
                503,
                "Rate limiting is temporarily unavailable; please retry shortly.",
                type=SERVER_ERROR,
                code="rate_limiter_unavailable",
                headers={"Retry-After": str(self.unavailable_retry_s)},
            ) from None
        ctx.response_headers.update(rate_limit_headers(ask, decision.usage))
        if not decision.allowed:
            self.events.decision(METRIC_LIMITS.get(decision.refused_limit or "", "all"), "limited")
            raise self._refusal(ask, decision)
        self.events.decision("all", "fail_open" if decision.degraded else "allowed")
        assert decision.lease is not None
        ctx.on_finish(self._settlement(decision.lease, prompt, counts_tokens))

    def _release_abandoned(self, deciding: asyncio.Future[Decision]) -> None:
        if deciding.cancelled() or deciding.exception() is not None:
            return
        lease = deciding.result().lease
        if lease is not None:
            task = asyncio.ensure_future(self.limiter.release(lease, 0))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _settlement(
        self, lease: Lease, prompt: int, counts_tokens: bool
    ) -> Callable[[RequestContext], Awaitable[None]]:
        async def settle(ctx: RequestContext) -> None:
            used = lease.ask.tokens
            if counts_tokens:
                used = ctx.prompt_tokens + ctx.completion_tokens
                if used == 0 and ctx.disconnected:
                    used = prompt  # left before the engine reported: it read the prompt at least
            # Shielded: a cancelled request (shutdown, disconnect) still returns its slot and refund.
            await asyncio.shield(self.limiter.release(lease, used))

        return settle

    def _refusal(self, ask: Ask, decision: Decision) -> APIError:
        scope = ask.scopes[decision.refused_scope]
        limit = decision.refused_limit or "requests"
        value = {
            "requests": scope.limits.requests_per_minute,
            "tokens": scope.limits.tokens_per_minute,
            "concurrent": scope.limits.concurrent,
            "tokens_per_day": scope.limits.tokens_per_day,
        }[limit]
        who = f"tenant {scope.id!r}" if scope.kind == "tenant" else f"key {scope.id!r}"
        if decision.too_large:
            retry_ms = 60_000 if limit == "tokens" else max(1000, decision.retry_after_ms)
            message = (
                f"Request too large for {who}: it may use {ask.tokens} tokens (prompt + max_tokens) and the limit "
                f"is {value} {_WHAT[limit]}. Reduce the prompt or max_tokens."
            )
        else:
            retry_ms = max(1, decision.retry_after_ms)
            message = f"Rate limit reached for {who}: limit {value} {_WHAT[limit]}"
            if limit in ("tokens", "tokens_per_day"):
                message += f", requested {ask.tokens}"
            message += f". Please try again in {duration(retry_ms)}."
        retry_after = str(max(1, math.ceil(retry_ms / 1000)))
        return APIError(429, message, type=RATE_LIMITED, code=RATE_LIMITED, headers={"Retry-After": retry_after})
