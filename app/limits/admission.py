"""The :class:`guardserve.app.services.Admission` the serving layer calls: rate limits per key and per tenant.

Per request: count the prompt with the served model's tokenizer (or take the count the context-length check
made, ``ctx.counted_prompt_tokens``), reserve ``prompt + max_tokens`` (what the request may at most use) together
with a request and a concurrency slot, in one limiter call; refuse with 429 (or 503 when Redis is down in
fail_closed mode); put ``x-ratelimit-*`` headers on the response; and, when the response is over however it ended,
settle: free the slot and replace the reservation with the tokens used. A request larger than a limit itself can
never be admitted: 413 ``request_too_large`` naming the limit, without ``Retry-After`` (clients must not retry).

``/v1/moderations`` calls are admitted the same way against ``LimitSettings.moderation``: a budget of their own
per key (scope id ``moderation:<key id>``), tokens estimated from the characters.
"""

from __future__ import annotations

import asyncio
import functools
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence

from guardserve.app.context import RequestContext
from guardserve.app.errors import SERVER_ERROR, APIError
from guardserve.app.limits.counting import TokenCounters
from guardserve.app.limits.events import METRIC_LIMITS, LimitEvents
from guardserve.app.limits.headers import duration, rate_limit_headers
from guardserve.app.limits.model import Ask, Decision, Lease, RateLimiter, Scope
from guardserve.app.limits.settings import Limits, LimitSettings
from guardserve.app.store.backend import BackendUnavailableError
from guardserve.models.engine import GenerationRequest
from guardserve.models.registry import ServedModel

ANONYMOUS = "anonymous"  # key and tenant of requests when auth is disabled
RATE_LIMITED = "rate_limit_exceeded"

_WHAT = {
    "requests": "requests per minute",
    "tokens": "tokens per minute",
    "concurrent": "concurrent requests",
    "tokens_per_day": "tokens per day",
}
_PARAM = {  # the Limits field behind each limit
    "requests": "requests_per_minute",
    "tokens": "tokens_per_minute",
    "concurrent": "concurrent",
    "tokens_per_day": "tokens_per_day",
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
        # resolving a key's limits validates and dumps pydantic models ~8 times: ~2.5 % of the auth path's CPU
        self._scopes = functools.lru_cache(maxsize=4096)(self._resolve)

    @property
    def degraded(self) -> bool:
        return self.limiter.degraded

    def scopes(self, ctx: RequestContext) -> tuple[str, tuple[Scope, ...]]:
        tenant = ctx.tenant or ANONYMOUS
        own = tuple(sorted(ctx.key_limits.items()))
        return tenant, self._scopes(ctx.key_id or ANONYMOUS, tenant, own)

    def _resolve(self, key_id: str, tenant: str, own: tuple[tuple[str, int | None], ...]) -> tuple[Scope, ...]:
        """The limited scopes of a key with these own limits (``_scopes``: memoized, the settings being fixed for the
        app's life; a key whose limits change comes with other ``own`` limits)."""
        key = Limits.model_validate(dict(own)).over(self.settings.key_defaults)
        scopes = (Scope("key", key_id, key), Scope("tenant", tenant, self.settings.tenant_limits(tenant)))
        return tuple(s for s in scopes if not s.limits.unlimited)

    async def admit(self, ctx: RequestContext, served: ServedModel, request: GenerationRequest) -> None:
        tenant, scopes = self.scopes(ctx)
        if not scopes:
            return
        counts_tokens = any(s.limits.tokens_per_minute or s.limits.tokens_per_day for s in scopes)
        prompt = 0
        if counts_tokens:
            counted = ctx.counted_prompt_tokens
            prompt = counted if counted is not None else await self.counters.count(served, request)
        max_new = request.sampling.max_tokens
        cost = prompt + max(0, served.context_length - prompt if max_new is None else max_new) if counts_tokens else 0
        await self._admit(ctx, Ask(uuid.uuid4().hex, tenant, scopes, cost), prompt, counts_tokens)

    async def admit_moderation(self, ctx: RequestContext, texts: Sequence[str]) -> None:
        limits = self.settings.moderation
        if limits.unlimited:
            return
        tenant = ctx.tenant or ANONYMOUS
        scope = Scope("key", f"moderation:{ctx.key_id or ANONYMOUS}", limits)
        counts_tokens = bool(limits.tokens_per_minute or limits.tokens_per_day)
        cost = sum(self.counters.estimate(t) for t in texts) if counts_tokens else 0
        # Moderation reads its input and generates nothing: what it reserves is what it uses.
        await self._admit(ctx, Ask(uuid.uuid4().hex, tenant, (scope,), cost), cost, False)

    async def _admit(self, ctx: RequestContext, ask: Ask, prompt: int, counts_tokens: bool) -> None:
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
        if decision.too_large:  # waiting never helps: no retry hint, and a status clients do not retry
            return APIError(
                413,
                f"Request too large for {who}: it may use {ask.tokens} tokens (prompt + max_tokens) and the limit "
                f"is {value} {_WHAT[limit]}, less than this request alone. Reduce the prompt or max_tokens.",
                param=f"limits.{_PARAM[limit]}",
                code="request_too_large",
            )
        retry_ms = max(1, decision.retry_after_ms)
        message = f"Rate limit reached for {who}: limit {value} {_WHAT[limit]}"
        if limit in ("tokens", "tokens_per_day"):
            message += f", requested {ask.tokens}"
        message += f". Please try again in {duration(retry_ms)}."
        retry_after = str(max(1, math.ceil(retry_ms / 1000)))
        return APIError(429, message, type=RATE_LIMITED, code=RATE_LIMITED, headers={"Retry-After": retry_after})
