"""``GUARDSERVE_REDIS__*``: where Redis is and how long the gateway waits for it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, model_validator

from guardserve.app.auth.settings import read_secret


class RedisSettings(BaseModel):
    # redis://[:password@]host:port/db, rediss://… (TLS), redis+sentinel://h1:26379,h2:26379/service/db,
    # redis+cluster://host:port. Unset: dev mode keeps keys and limits in process memory; prod refuses to start.
    url: SecretStr | None = None
    # The URL from a file instead (a Kubernetes/Docker secret: the URL may carry a password); `url` wins if both.
    url_file: Path | None = None
    prefix: str = Field("gs:", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9:._-]+$")  # every key we write
    timeout_ms: float = Field(100.0, gt=0, le=60_000)  # one command (+ connect_timeout_ms if it must connect)
    # A burst opening many connections at once on a busy event loop needs more than one command does; a dead
    # Redis refuses at once, and a black-holed one costs this only until the circuit opens.
    connect_timeout_ms: float = Field(500.0, gt=0, le=60_000)
    max_connections: int = Field(64, ge=1, le=10_000)  # concurrent calls per process; more wait their turn
    queue_timeout_ms: float = Field(1000.0, gt=0, le=60_000)  # longest wait for a turn (then: unavailable)
    breaker_failures: int = Field(3, ge=1)  # consecutive failures that open the circuit
    breaker_reset_ms: float = Field(500.0, gt=0, le=60_000)  # open circuit: time before one probe call
    warn_interval_s: float = Field(30.0, gt=0)  # an outage is logged once per interval, never per request
    # Prod start-up reads CONFIG GET appendonly/save and refuses a Redis that persists nothing (a restart would
    # lose every API key: each request a 401). False: only warn (a managed Redis that persists but hides CONFIG).
    require_persistence: bool = True

    @model_validator(mode="after")
    def _url_from_file(self) -> RedisSettings:
        if self.url is None and self.url_file is not None:
            text = read_secret(None, self.url_file, "the Redis URL")
            if text is not None:
                self.url = SecretStr(text)
        return self
