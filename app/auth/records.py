"""What is stored per key (never the key itself) and what the admin API shows."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from guardserve.app.feedback.model import Retention
from guardserve.app.limits.settings import Limits

# user: the OpenAI API; tenant_admin: also manages its own tenant's keys (never an admin key); admin: every tenant
Role = Literal["user", "tenant_admin", "admin"]
ADMIN_ROLES = frozenset({"tenant_admin", "admin"})
NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"  # tenant and policy names: safe in Redis keys and metric labels


class KeyRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    hash: str  # HMAC-SHA256(pepper, key), hex
    tenant: str = Field(pattern=NAME_PATTERN)
    role: Role = "user"
    policy: str | None = Field(None, pattern=NAME_PATTERN)  # guardrail policy; None: the gateway's default
    name: str = Field("", max_length=200)
    limits: Limits = Limits()
    retention: Retention | None = None  # response records for this key; None: the gateway's feedback.retention
    created_at: int = Field(default_factory=lambda: int(time.time()))
    expires_at: int | None = None
    revoked_at: int | None = None

    def state(self, now: float | None = None) -> Literal["active", "revoked", "expired"]:
        now = time.time() if now is None else now
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def public(self) -> dict[str, Any]:
        """The admin API's view: everything but the hash."""
        data = self.model_dump(exclude={"hash"})
        data["limits"] = self.limits.model_dump(exclude_none=True)
        return {"object": "api_key", **data, "state": self.state()}
