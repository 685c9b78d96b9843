"""``GUARDSERVE_LIMITS__*``: default limits, per-tenant limits, and what to do when Redis fails."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_LIMIT = 2**53  # every limit fits a JSON number exactly (JavaScript, Redis' Lua) and any 64-bit integer


class Limits(BaseModel):
    """One scope's limits. ``None``: not set here (a key inherits the default); ``0``: unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int | None = Field(None, ge=0, le=MAX_LIMIT)
    tokens_per_minute: int | None = Field(None, ge=0, le=MAX_LIMIT)  # prompt + completion
    concurrent: int | None = Field(None, ge=0, le=MAX_LIMIT)  # requests in flight at once
    tokens_per_day: int | None = Field(None, ge=0, le=MAX_LIMIT)  # UTC day quota, prompt + completion

    def over(self, defaults: Limits) -> Limits:
        """These limits, with every unset field taken from ``defaults``."""
        own = self.model_dump(exclude_none=True)
        return defaults.model_copy(update=own)

    def divided(self, parts: int) -> Limits:
        """Each of ``parts`` processes' share (at least 1), for the per-process fallback."""
        return Limits(**{k: (max(1, v // parts) if v else v) for k, v in self.model_dump().items()})

    @property
    def unlimited(self) -> bool:
        return not any(self.model_dump().values())


class LimitSettings(BaseModel):
    enabled: bool = True
    # Redis unreachable: fail_open admits against a per-process in-memory limiter whose limits are divided by
    # `replicas` x workers; fail_closed answers 503 + Retry-After.
    failure_mode: Literal["fail_open", "fail_closed"] = "fail_open"
    replicas: int = Field(1, ge=1)  # gateway pods sharing the limits (each runs GUARDSERVE_WORKERS processes)
    key_defaults: Limits = Limits(requests_per_minute=600, tokens_per_minute=200_000, concurrent=32)
    tenant_defaults: Limits = Limits()  # unlimited unless set
    tenants: dict[str, Limits] = Field(default_factory=dict)  # per-tenant, over tenant_defaults
    # /v1/moderations: every key's own moderation budget, apart from its completions limits (tokens: estimated)
    moderation: Limits = Limits(requests_per_minute=600, concurrent=8)
    lease_seconds: float = Field(30.0, ge=1, le=3600)  # a concurrency slot's lease, renewed while the request runs
    estimate_chars_per_token: float = Field(3.0, gt=0)  # models without a tokenizer: conservative prompt estimate
    count_in_thread_chars: int = Field(8192, ge=0)  # prompts longer than this are counted off the event loop

    def tenant_limits(self, tenant: str) -> Limits:
        own = self.tenants.get(tenant)
        return own.over(self.tenant_defaults) if own else self.tenant_defaults
