"""Who may call the gateway and how much: API keys, rate limits and the Redis behind both, built once per app.

:meth:`Access.build` (no IO, in the app factory) checks the configuration; production mode refuses to start
without real secrets and Redis. :meth:`Access.start` (in the lifespan) reaches Redis, starts the lease renewer,
and in dev mode says loudly where keys and limits live and, unless an admin key is configured (``guardserve serve``
configures its kept dev key, :mod:`guardserve.app.auth.devkey`), prints a fresh key.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from redis.exceptions import RedisError
from starlette.responses import Response

from guardserve.app.auth.keys import PREFIX
from guardserve.app.auth.middleware import AuthMiddleware
from guardserve.app.auth.service import KeyService
from guardserve.app.auth.settings import DEV_PEPPER
from guardserve.app.auth.store import MemoryKeyStore, RedisKeyStore
from guardserve.app.errors import SERVER_ERROR, APIError
from guardserve.app.limits.admission import RateLimitAdmission
from guardserve.app.limits.counting import TokenCounters
from guardserve.app.limits.events import LimitEvents
from guardserve.app.limits.memory import MemoryLimiter
from guardserve.app.limits.model import RateLimiter
from guardserve.app.limits.redis_limiter import RedisLimiter
from guardserve.app.limits.resilient import ResilientLimiter
from guardserve.app.observability.recorder import MetricsRecorder
from guardserve.app.services import Admission, AdmitAll
from guardserve.app.settings import Settings
from guardserve.app.store.backend import BackendUnavailableError, RedisBackend
from guardserve.app.store.connection import connect

log = logging.getLogger(__name__)

MIN_PEPPER = 32
MIN_ADMIN_KEY = 40
DEV_KEY_TTL_S = 86_400


async def redis_persistence(backend: RedisBackend) -> str:
    """``aof``, ``rdb``, ``none``, or ``unknown`` (CONFIG refused, as some managed services do)."""
    try:
        appendonly = await backend.call(lambda r: r.config_get("appendonly"))
        save = await backend.call(lambda r: r.config_get("save"))
    except (BackendUnavailableError, RedisError):
        return "unknown"
    if str(appendonly.get("appendonly", "")).lower() == "yes":
        return "aof"
    return "rdb" if str(save.get("save", "")).strip() else "none"


class ConfigurationError(RuntimeError):
    """The gateway refuses to start with this configuration."""


def production_problems(settings: Settings) -> list[str]:
    """Why prod mode must not start with these settings (empty in dev mode)."""
    if settings.mode != "prod":
        return []
    problems = []
    auth = settings.auth
    if not auth.enabled:
        problems.append("auth.enabled=false is for development only")
    pepper = auth.pepper_value()
    if not pepper or pepper == DEV_PEPPER or len(pepper) < MIN_PEPPER:
        problems.append(f"GUARDSERVE_AUTH__PEPPER(_FILE) must be a secret of at least {MIN_PEPPER} characters")
    admin = auth.admin_key_value()
    if auth.enabled and (not admin or not admin.startswith(PREFIX) or len(admin) < MIN_ADMIN_KEY):
        problems.append(
            f"GUARDSERVE_AUTH__ADMIN_KEY(_FILE) must be a generated key ({PREFIX}…, at least {MIN_ADMIN_KEY} "
            "characters; `guardserve keys generate` prints one)"
        )
    if settings.redis.url is None:
        problems.append("GUARDSERVE_REDIS__URL is required (keys and limits must be shared by every replica)")
    return problems


@dataclass
class Access:
    settings: Settings
    backend: RedisBackend | None
    keys: KeyService | None
    limiter: RateLimiter | None
    admission: Admission
    events: LimitEvents
    counters: TokenCounters = field(default_factory=TokenCounters)  # prompt token counts, shared with serving

    @classmethod
    def build(cls, settings: Settings) -> Access:
        problems = production_problems(settings)
        if problems:
            raise ConfigurationError("refusing to start in production mode: " + "; ".join(problems))
        backend = RedisBackend(connect(settings.redis), settings.redis) if settings.redis.url else None
        keys = None
        if settings.auth.enabled:
            store = RedisKeyStore(backend) if backend else MemoryKeyStore()
            keys = KeyService(
                store,
                pepper=settings.auth.pepper_value() or DEV_PEPPER,
                admin_key=settings.auth.admin_key_value(),
                cache_seconds=settings.auth.cache_seconds,
                stale_seconds=settings.auth.stale_seconds,
            )
        limits = settings.limits
        counters = TokenCounters(limits.estimate_chars_per_token, limits.count_in_thread_chars)
        limiter: RateLimiter | None = None
        admission: Admission = AdmitAll()
        events = LimitEvents()
        if limits.enabled:
            if backend is not None:
                fallback = MemoryLimiter(divisor=limits.replicas * settings.workers)
                primary = RedisLimiter(backend, limits.lease_seconds)
                limiter = ResilientLimiter(primary, fallback, fail_open=limits.failure_mode == "fail_open")
            else:
                limiter = MemoryLimiter()
            events = LimitEvents(lambda: limiter.degraded if limiter else False)
            retry = max(1, round(settings.redis.breaker_reset_ms / 1000))
            admission = RateLimitAdmission(limiter, limits, counters, events=events, unavailable_retry_s=retry)
        return cls(settings, backend, keys, limiter, admission, events, counters)

    def report_to(self, recorder: MetricsRecorder) -> None:
        """Rate-limit decisions and the degraded flag go to the metrics (``Services.metrics``)."""
        self.events.subscribe(recorder.ratelimit_decision)
        if self.backend is not None:
            self.backend.on_degraded(recorder.ratelimit_degraded)

    @property
    def degraded(self) -> bool:
        return self.backend.degraded if self.backend else False

    def install(self, app: FastAPI) -> None:
        """The auth middleware (call between the body limit and the request context) and the 503 handler."""
        app.add_middleware(AuthMiddleware, keys=self.keys)

        @app.exception_handler(BackendUnavailableError)
        async def _unavailable(request: Request, exc: BackendUnavailableError) -> Response:
            return APIError(
                503,
                "The key store is unavailable; please retry shortly.",
                type=SERVER_ERROR,
                code="key_store_unavailable",
                headers={"Retry-After": "1"},
            ).response()

    async def start(self) -> None:
        settings = self.settings
        if self.backend is not None:
            where = self.backend.target
            try:
                await self.backend.ping()
                log.info(
                    "keys and rate limits in Redis at %s (%s)", where.where if where else "?", where and where.kind
                )
            except BackendUnavailableError as exc:
                if settings.mode == "prod":
                    raise ConfigurationError(f"Redis is unreachable ({exc}); refusing to start in production") from exc
                log.warning("Redis is unreachable (%s); starting anyway in dev mode", exc)
            else:
                await self._check_persistence()
        elif settings.auth.enabled or settings.limits.enabled:
            log.warning(
                "DEV MODE: no GUARDSERVE_REDIS__URL, so API keys and rate limits live in this process' memory: "
                "lost on restart, not shared between workers or replicas. Set GUARDSERVE_REDIS__URL for anything "
                "but local development."
            )
            if settings.workers > 1:
                log.warning("DEV MODE: %d workers each have their own keys and limits", settings.workers)
        if self.limiter is not None:
            await self.limiter.start()
        if settings.mode == "dev" and self.keys is not None and settings.auth.dev_key and not self._admin_key_set():
            await self._dev_key()

    async def _check_persistence(self) -> None:
        """Keys live in Redis: one that persists nothing loses them all on a restart. Prod refuses it (unless
        ``redis.require_persistence`` is off), dev warns."""
        assert self.backend is not None
        found = await redis_persistence(self.backend)
        if found != "none":
            if found == "unknown":
                log.warning("cannot read Redis' persistence settings (CONFIG GET refused): make sure it persists")
            return
        message = (
            "Redis persists nothing (appendonly no, save ''): a restart loses every API key and record; "
            "enable AOF (appendonly yes) or RDB snapshots"
        )
        if self.settings.mode == "prod" and self.settings.redis.require_persistence:
            raise ConfigurationError(
                message + "; refusing to start in production (GUARDSERVE_REDIS__REQUIRE_PERSISTENCE)"
            )
        log.warning(message)

    def _admin_key_set(self) -> bool:
        """An admin key is configured (``guardserve serve`` sets its kept dev key so): no key to create."""
        return self.settings.auth.admin_key_value() is not None

    async def _dev_key(self) -> None:
        expires = int(time.time()) + DEV_KEY_TTL_S if self.backend else None
        try:
            key, record = await self.keys.create("dev", "admin", name="dev key", expires_at=expires)  # type: ignore[union-attr]
        except BackendUnavailableError:
            log.warning("DEV MODE: Redis unreachable, no dev key was created")
            return
        lasts = "for 24 h" if expires else "until this process stops"
        print(
            f"\n  GuardServe dev mode: API key (admin, tenant 'dev', valid {lasts}):\n\n    {key}\n\n"
            f"  export OPENAI_API_KEY={key}\n",
            file=sys.stderr,
            flush=True,
        )
        log.info("dev key %s created", record.id)

    async def aclose(self) -> None:
        if self.limiter is not None:
            await self.limiter.aclose()
        if self.backend is not None:
            await self.backend.aclose()
