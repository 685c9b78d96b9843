"""Key material and the key service: hashes only, constant-time checks, revocation within the cache time."""

from __future__ import annotations

import asyncio
import time

import pytest

from guardserve.app.auth import keys
from guardserve.app.auth.service import BOOTSTRAP_ID, KeyService
from guardserve.app.auth.store import MemoryKeyStore, RedisKeyStore
from guardserve.app.errors import APIError
from guardserve.app.limits.settings import Limits
from guardserve.app.store.backend import RedisBackend
from guardserve.app.store.connection import connect
from guardserve.app.store.settings import RedisSettings
from tests.support.redis import RedisProcess

PEPPER = "p" * 40


def test_generated_keys_parse_and_hash_under_the_pepper() -> None:
    kid, key = keys.generate()
    assert key.startswith(f"gs-{kid}-") and len(key) >= 55 and keys.key_id_of(key) == kid
    assert keys.key_id_of(key + "!") is None and keys.key_id_of("sk-whatever") is None
    digest = keys.keyed_hash(PEPPER, key)
    assert key not in digest and keys.matches(PEPPER, key, digest)
    assert not keys.matches("q" * 40, key, digest)
    assert keys.generate()[1] != key
    assert kid in keys.redacted(key) and key[-10:] not in keys.redacted(key)


async def expect(service: KeyService, header: str | None, status: int, code: str) -> None:
    with pytest.raises(APIError) as err:
        await service.authenticate(header)
    assert (err.value.status, err.value.code) == (status, code)


async def test_the_store_never_holds_the_key_and_bad_keys_are_refused() -> None:
    store = MemoryKeyStore()
    service = KeyService(store, PEPPER)
    key, record = await service.create("acme", policy="strict", limits=Limits(requests_per_minute=5))
    stored = await store.get(record.id)
    assert stored is not None and key not in stored.model_dump_json()
    found = await service.authenticate(f"Bearer {key}")
    assert (found.tenant, found.role, found.policy, found.limits.requests_per_minute) == ("acme", "user", "strict", 5)
    await expect(service, None, 401, "missing_api_key")
    await expect(service, f"Basic {key}", 401, "invalid_api_key")
    await expect(service, f"Bearer {key[:-1]}x", 401, "invalid_api_key")
    await expect(service, "Bearer gs-000000000000-" + "a" * 43, 401, "invalid_api_key")
    await expect(service, "Bearer sk-openai-style", 401, "invalid_api_key")


async def test_expired_revoked_and_rotated_keys() -> None:
    service = KeyService(MemoryKeyStore(), PEPPER, cache_seconds=60)
    old_key, old = await service.create("acme", expires_at=int(time.time()) + 3600)
    expired_key, _ = await service.create("acme", expires_at=int(time.time()) - 1)
    await expect(service, f"Bearer {expired_key}", 401, "api_key_expired")
    await service.authenticate(f"Bearer {old_key}")  # now cached for 60 s
    await service.revoke(old.id)
    await expect(service, f"Bearer {old_key}", 401, "api_key_revoked")  # the revoking process forgets at once
    key, _ = await service.create("acme")
    rotated = await service.rotate((await service.authenticate(f"Bearer {key}")).id, grace_seconds=0)
    assert rotated is not None
    new_key, new = rotated
    assert new.tenant == "acme" and (await service.authenticate(f"Bearer {new_key}")).id == new.id
    await expect(service, f"Bearer {key}", 401, "api_key_revoked")


async def test_bootstrap_admin_key() -> None:
    admin = keys.generate()[1]
    service = KeyService(MemoryKeyStore(), PEPPER, admin_key=admin)
    record = await service.authenticate(f"Bearer {admin}")
    assert record.id == BOOTSTRAP_ID and record.role == "admin"


def redis_service(url: str, prefix: str, **kwargs: float) -> tuple[KeyService, RedisBackend]:
    settings = RedisSettings(url=url, prefix=prefix, breaker_reset_ms=100)  # type: ignore[arg-type]
    backend = RedisBackend(connect(settings), settings)
    return KeyService(RedisKeyStore(backend), PEPPER, **kwargs), backend


async def test_revocation_reaches_other_replicas_within_the_cache_time(shared_redis: tuple[str, str]) -> None:
    url, prefix = shared_redis
    a, backend_a = redis_service(url, prefix, cache_seconds=0.5)
    b, backend_b = redis_service(url, prefix, cache_seconds=0.5)
    key, record = await a.create("acme")
    assert (await b.authenticate(f"Bearer {key}")).id == record.id  # b caches it
    assert [r.id for r in await b.list("acme")] == [record.id]
    await a.revoke(record.id)
    revoked_at = time.monotonic()
    while True:
        try:
            await b.authenticate(f"Bearer {key}")
        except APIError as exc:
            assert exc.code == "api_key_revoked"
            break
        await asyncio.sleep(0.02)
    # the cache time plus scheduling slack: a loaded machine (load 8-15) delays the polling loop, not the expiry
    assert time.monotonic() - revoked_at <= 0.5 + 1.0
    await backend_a.aclose()
    await backend_b.aclose()


async def test_redis_outage_keeps_recently_seen_keys_only(own_redis: RedisProcess) -> None:
    service, backend = redis_service(own_redis.url, "gs:", cache_seconds=0, stale_seconds=60)
    seen_key, _ = await service.create("acme")
    unseen_key, _ = await service.create("acme")
    await service.authenticate(f"Bearer {seen_key}")
    own_redis.kill()
    assert (await service.authenticate(f"Bearer {seen_key}")).tenant == "acme"
    await expect(service, f"Bearer {unseen_key}", 503, "key_store_unavailable")
    await backend.aclose()
