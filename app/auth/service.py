"""Verify, create, list, revoke and rotate API keys over a :class:`KeyStore`, with a short lookup cache.

Cache: a key's record is reused for ``cache_seconds`` (default 2 s), so a revocation takes effect within that
time on every replica (at once on the one that revoked). While Redis is unreachable, a record this process
fetched within ``stale_seconds`` keeps being used (nobody can revoke during the outage anyway: revocation writes
to Redis); a key not seen recently gets 503 until Redis is back.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from guardserve.app.auth import keys
from guardserve.app.auth.records import KeyRecord, Role
from guardserve.app.auth.store import KeyStore
from guardserve.app.errors import INVALID_REQUEST, SERVER_ERROR, APIError
from guardserve.app.feedback.model import Retention
from guardserve.app.limits.settings import Limits
from guardserve.app.store.backend import BackendUnavailableError

BOOTSTRAP_ID = "bootstrap-admin"
SYSTEM_TENANT = "system"
_MAX_CACHE = 50_000


def unauthorized(message: str, code: str) -> APIError:
    return APIError(401, message, type=INVALID_REQUEST, code=code, headers={"WWW-Authenticate": "Bearer"})


@dataclass
class _Cached:
    record: KeyRecord | None
    fetched: float


class KeyService:
    def __init__(
        self,
        store: KeyStore,
        pepper: str,
        admin_key: str | None = None,
        cache_seconds: float = 2.0,
        stale_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self._pepper = pepper
        self._admin_hash = keys.keyed_hash(pepper, admin_key) if admin_key else None
        self.cache_seconds = cache_seconds
        self.stale_seconds = stale_seconds
        self._clock = clock
        self._cache: dict[str, _Cached] = {}

    # --- verification ---------------------------------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> KeyRecord:
        """The record of the key in an ``Authorization`` header, or an APIError (401, or 503 if unverifiable)."""
        if not authorization:
            raise unauthorized(
                "You didn't provide an API key. Send it in the Authorization header: 'Authorization: Bearer gs-…'.",
                "missing_api_key",
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("The Authorization header must be 'Bearer <API key>'.", "invalid_api_key")
        digest = keys.keyed_hash(self._pepper, token)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return KeyRecord(id=BOOTSTRAP_ID, hash="", tenant=SYSTEM_TENANT, role="admin")
        key_id = keys.key_id_of(token)
        record = await self._lookup(key_id) if key_id else None
        # compare_digest even without a record, so timing does not tell unknown ids from wrong secrets
        valid = hmac.compare_digest(digest, record.hash if record else "0" * 64)
        if record is None or not valid:
            raise unauthorized(f"Incorrect API key provided: {keys.redacted(token)}.", "invalid_api_key")
        state = record.state()
        if state != "active":
            raise unauthorized(f"The API key {keys.redacted(token)} has been {state}.", f"api_key_{state}")
        return record

    async def _lookup(self, key_id: str) -> KeyRecord | None:
        now = self._clock()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached.fetched < self.cache_seconds:
            return cached.record
        try:
            record = await self.store.get(key_id)
        except BackendUnavailableError:
            if cached is not None and now - cached.fetched < self.stale_seconds:
                return cached.record
            raise APIError(
                503,
                "API keys cannot be verified right now; please retry shortly.",
                type=SERVER_ERROR,
                code="key_store_unavailable",
                headers={"Retry-After": "1"},
            ) from None
        if len(self._cache) >= _MAX_CACHE:
            self._cache.clear()
        self._cache[key_id] = _Cached(record, now)
        return record

    def forget(self, key_id: str) -> None:
        self._cache.pop(key_id, None)

    # --- administration -------------------------------------------------------------------------------------

    async def create(
        self,
        tenant: str,
        role: Role = "user",
        policy: str | None = None,
        name: str = "",
        limits: Limits | None = None,
        expires_at: int | None = None,
        retention: Retention | None = None,
    ) -> tuple[str, KeyRecord]:
        """A new key: (the key, shown once; its record)."""
        for _ in range(5):
            key_id, key = keys.generate()
            record = KeyRecord(
                id=key_id,
                hash=keys.keyed_hash(self._pepper, key),
                tenant=tenant,
                role=role,
                policy=policy,
                name=name,
                limits=limits or Limits(),
                expires_at=expires_at,
                retention=retention,
            )
            if await self.store.add(record):
                return key, record
        raise RuntimeError("could not allocate a key id")

    async def get(self, key_id: str) -> KeyRecord | None:
        return await self.store.get(key_id)

    async def list(self, tenant: str | None = None) -> list[KeyRecord]:
        return [r for r in await self.store.all() if tenant is None or r.tenant == tenant]

    async def revoke(self, key_id: str) -> KeyRecord | None:
        record = await self.store.get(key_id)
        if record is None:
            return None
        if record.revoked_at is None:
            record = record.model_copy(update={"revoked_at": int(time.time())})
            await self.store.put(record)
        self.forget(key_id)
        return record

    async def rotate(self, key_id: str, grace_seconds: int = 0) -> tuple[str, KeyRecord] | None:
        """A new key with the same tenant, role, policy, limits, retention and expiry; the old one is revoked, or
        expires after ``grace_seconds`` so clients can switch over."""
        old = await self.store.get(key_id)
        if old is None:
            return None
        key, record = await self.create(
            old.tenant, old.role, old.policy, old.name, old.limits, old.expires_at, old.retention
        )
        if grace_seconds > 0:
            end = int(time.time()) + grace_seconds
            if old.expires_at is None or old.expires_at > end:
                await self.store.put(old.model_copy(update={"expires_at": end}))
        else:
            await self.revoke(key_id)
        self.forget(key_id)
        return key, record
