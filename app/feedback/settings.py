"""``GUARDSERVE_FEEDBACK__*``: response records, feedback durability and the dev-mode file store.

``retention`` is the default for keys that do not set their own (``KeyRecord.retention``):

* ``off``: no response record (only the response's owner tenant is remembered, so its keys can still rate it);
* ``metadata`` (default): id, tenant, key id, model, checkpoint, time, finish reason, token counts, guard decisions
  (types, counts, actions; never values);
* ``scrubbed``: metadata plus the prompt messages and the answer after PII scrubbing (typed placeholders).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from guardserve.app.feedback.layout import STREAM_MAXLEN
from guardserve.app.feedback.model import Retention

DAY_S = 86_400


class FeedbackSettings(BaseModel):
    enabled: bool = True  # off: no response records, /v1/feedback answers 404
    retention: Retention = "metadata"
    ttl_days: float = Field(30.0, gt=0, le=3650)  # response records expire after this long
    # A response's owner tenant is kept this much longer than its record, so feedback on an expired record is still
    # accepted from its own tenant (metadata only) and refused (404) to others.
    owner_extra_days: float = Field(60.0, ge=0, le=3650)
    replicas_ack: int = Field(0, ge=0, le=16)  # > 0: WAIT for this many replicas before acknowledging a feedback
    replicas_timeout_ms: int = Field(1000, ge=1, le=60_000)
    stream_maxlen: int = Field(STREAM_MAXLEN, ge=1000)  # approximate (~) bound per tenant stream
    # Dev mode without Redis: feedback is appended (fsync'd) to this file; response records stay in memory.
    file: Path = Path(".guardserve/feedback.jsonl")
    memory_records: int = Field(10_000, ge=1)  # dev mode: response records kept in memory (oldest dropped)
    # Keyed hash of the OpenAI `user` value (erasure by user); default: derived from the auth pepper.
    user_hash_secret: SecretStr | None = None
    # Scrubbing (Presidio) runs in these threads, at most `scrub_queue` texts waiting, each within `scrub_timeout_s`.
    scrub_workers: int = Field(2, ge=1, le=64)
    scrub_queue: int = Field(256, ge=1)
    scrub_timeout_s: float = Field(10.0, gt=0, le=600)
    max_pending_records: int = Field(1000, ge=1)  # response records being scrubbed/written; beyond: dropped, counted
    # feedback on a response whose record is not there yet waits this long for it (its write runs after the answer,
    # here or on another replica), then is a 404 (or record_kept: false for a known owner)
    record_wait_s: float = Field(2.0, ge=0, le=60)
    retry_after_s: int = Field(1, ge=1)  # Retry-After of a 503 feedback_unavailable
    lag_interval_s: float = Field(15.0, gt=0, le=3600)  # how often guardserve_feedback_export_lag is refreshed

    @property
    def ttl_ms(self) -> int:
        return max(1, round(self.ttl_days * DAY_S * 1000))

    @property
    def owner_ttl_ms(self) -> int:
        return self.ttl_ms + round(self.owner_extra_days * DAY_S * 1000)
