"""Gateway settings: environment variables with the ``GUARDSERVE_`` prefix, nested with ``__``.

Examples: ``GUARDSERVE_PORT=9000``, ``GUARDSERVE_CPU__MAX_BATCH=32``, ``GUARDSERVE_HTTP__READ_TIMEOUT=60``.
Loaded once (in the CLI or the ASGI factory) and passed to :func:`guardserve.app.main.create_app`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from guardserve.app.auth.settings import AuthSettings
from guardserve.app.connections import ConnectionSettings
from guardserve.app.feedback.settings import FeedbackSettings
from guardserve.app.limits.settings import LimitSettings
from guardserve.app.store.settings import RedisSettings
from guardserve.guardrails.policy import DEFAULT_POLICY_FILE
from guardserve.models.cpu.config import CPUEngineConfig
from guardserve.models.openai_http import HTTPEngineConfig
from guardserve.models.registry import DEFAULT_REGISTRY, ModelEntry

# Each engine's settings are its own config model, defined next to the engine. The old names stay for importers.
CPUSettings = CPUEngineConfig
HTTPSettings = HTTPEngineConfig


class GuardrailSettings(BaseModel):
    enabled: bool = True
    policy_file: Path = DEFAULT_POLICY_FILE
    default_policy: str | None = None  # overrides the file's `default`
    workers: int = Field(4, ge=1, le=64)  # threads for guard work (Presidio, classifiers)
    batch_wait_ms: float = Field(2.0, ge=0.0, le=100.0)  # how long the classifier waits to batch concurrent texts
    # Key for the `hash` operator (>= 16 characters). Unset: a random key per process, so hashes differ between
    # replicas and restarts; set it when hashed values must be comparable.
    hash_salt: SecretStr | None = None
    # Bounds on guard work. Each screening (a request's input, a whole answer, a moderation call) gets `deadline`
    # seconds; past it the guard counts as failed and the policy's `on_error` decides. At most `screenings` input
    # screenings run at once and `max_queued` wait for a turn; beyond that a request is refused at once (503).
    deadline: float = Field(10.0, gt=0, le=600)
    screenings: int = Field(8, ge=1, le=1024)
    max_queued: int = Field(64, ge=0, le=100_000)

    @field_validator("hash_salt")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("hash_salt must be at least 16 characters")
        return value


class RequestCaps(BaseModel):
    """Size caps checked before anything costly (``GUARDSERVE_CAPS__*``): over one is a 400/413 naming the cap.

    The defaults keep one request's guard work well inside ``guardrails.deadline`` on a small CPU box (Presidio
    screens about 15 KB of text per second per core).
    """

    max_prompt_chars: int = Field(32_768, ge=1)  # all messages' (or the prompt's) characters together
    max_messages: int = Field(256, ge=1)  # messages in one chat request
    max_moderation_inputs: int = Field(64, ge=1)  # texts in one /v1/moderations call
    max_moderation_chars: int = Field(32_768, ge=1)  # all texts of one /v1/moderations call together


class ObservabilitySettings(BaseModel):
    """Metrics, logs and traces (``GUARDSERVE_OBSERVABILITY__*``)."""

    metrics_enabled: bool = True  # serve Prometheus metrics at all
    metrics_port: int | None = Field(None, ge=1, le=65535)  # serve /metrics there instead of the API port
    metrics_host: str | None = None  # where the metrics port listens (default: the API host)
    log_format: Literal["json", "text"] = "json"  # `guardserve serve` logs; json: one object per line
    engine_health_interval: float = Field(5.0, gt=0)  # seconds between engine_up updates
    otel_enabled: bool = False  # OpenTelemetry traces; needs the `otel` extra
    otel_endpoint: str = "http://127.0.0.1:4318/v1/traces"  # OTLP/HTTP collector
    otel_service_name: str = "guardserve"
    # The audit log (one JSON line per request, app/observability/audit.py): "stderr", "off", or a file path.
    audit_log: str = "stderr"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GUARDSERVE_", env_nested_delimiter="__", extra="ignore")

    mode: Literal["dev", "prod"] = "dev"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    registry: Path = DEFAULT_REGISTRY
    # Inline entries replace the registry file (used by `guardserve engine`, and handy in tests).
    models: list[ModelEntry] = Field(default_factory=list)

    # OpenAPI schema and its /docs, /redoc views: None (default) serves them in dev mode only
    docs: bool | None = None
    # browser origins allowed to call the API (CORS); empty: none, so a web page elsewhere cannot read answers
    cors_origins: list[str] = Field(default_factory=list)

    max_body_bytes: int = Field(1_048_576, ge=1024)  # larger bodies get 413
    body_timeout: float = Field(30.0, gt=0, le=3600)  # seconds for a whole request body to arrive; then 408
    # per worker: header deadline, keep-alive, caps on open / unauthenticated-per-IP connections and requests
    connections: ConnectionSettings = Field(default_factory=ConnectionSettings)  # app/connections.py
    max_stop_sequences: int = Field(4, ge=0)
    retry_after_seconds: int = Field(1, ge=1)  # Retry-After on 503 when the engine gives no better hint
    caps: RequestCaps = Field(default_factory=RequestCaps)  # prompt / message / moderation size caps

    cpu: CPUEngineConfig = Field(default_factory=CPUEngineConfig)  # the CPU engine (models/cpu/config.py)
    http: HTTPEngineConfig = Field(default_factory=HTTPEngineConfig)  # the OpenAI-HTTP engine (models/openai_http.py)
    guardrails: GuardrailSettings = Field(default_factory=GuardrailSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)  # API keys (app/auth/settings.py)
    limits: LimitSettings = Field(default_factory=LimitSettings)  # rate limits (app/limits/settings.py)
    redis: RedisSettings = Field(default_factory=RedisSettings)  # shared state (app/store/settings.py)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)  # records and feedback (app/feedback)

    @property
    def serves_docs(self) -> bool:
        return self.docs if self.docs is not None else self.mode == "dev"
