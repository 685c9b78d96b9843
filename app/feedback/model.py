"""The records the gateway keeps about answers and their feedback. Values are PII-scrubbed before they get here:
a record holds typed placeholders (``<EMAIL_ADDRESS>``), guard decisions as types, counts and actions, and the
OpenAI ``user`` only as a keyed hash (so that erasure can find it without the raw value being stored)."""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Retention = Literal["off", "metadata", "scrubbed"]
Category = Literal["harmful", "inaccurate", "pii_leak", "unhelpful", "offensive", "other"]
Rating = Literal["up", "down"] | int  # "up"/"down", or a score 1-5 (validated where feedback is accepted)

SCHEMA_VERSION = 1


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class GuardSummary(_Record):
    """One guard's decision on one stage: never the matched values."""

    guard: str
    stage: str  # "input" | "output"
    action: str  # a guardrails Action value, or "error"
    entities: dict[str, int] = Field(default_factory=dict)  # entity type -> count


class Message(_Record):
    role: str
    content: str  # scrubbed


class ResponseRecord(_Record):
    """One finished completion, as the client got it (``id`` is the ``chatcmpl-…`` / ``cmpl-…`` it saw)."""

    version: int = SCHEMA_VERSION
    id: str
    tenant: str
    key_id: str
    model: str
    model_version: str | None = None  # the version that answered (app.rollout): "stable", or the registry's label
    checkpoint_sha256: str | None = None
    created: int = Field(default_factory=lambda: int(time.time()))
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    guards: tuple[GuardSummary, ...] = ()
    user_hash: str | None = None  # keyed hash of the request's OpenAI `user`
    retention: Retention = "metadata"
    messages: tuple[Message, ...] | None = None  # only with retention "scrubbed"
    answer: str | None = None  # only with retention "scrubbed"


class FeedbackRecord(_Record):
    version: int = SCHEMA_VERSION
    id: str  # "fb-…"
    response_id: str
    tenant: str
    key_id: str
    rating: Rating
    categories: tuple[Category, ...] = ()
    comment: str | None = None  # scrubbed
    preferred: str | None = None  # scrubbed: a better answer the user offers
    user_hash: str | None = None
    created: int = Field(default_factory=lambda: int(time.time()))
    record_kept: bool = True  # False: the response's record had expired or was never kept (metadata only)
