"""Where response records and feedback live in Redis (one module, so the gateway that writes and the exporter that
reads agree). Every key carries the tenant: a lookup always uses the caller's tenant, so another tenant's id is
simply absent (404, no existence oracle). ``p`` is the deployment's key prefix (``RedisSettings.prefix``).

=================================  =====================================================================
key                                what
=================================  =====================================================================
``{p}resp:{tenant}:{id}``          a :class:`ResponseRecord` as JSON, with the retention TTL
``{p}fb:{tenant}:{id}``            a :class:`FeedbackRecord` as JSON (for GET; no TTL)
``{p}fbs:{tenant}``                the tenant's feedback Stream: entries ``op`` (add/erase) + ``record``
                                   (JSON); ``XADD MAXLEN ~ STREAM_MAXLEN``; the exporter's consumer group
                                   ``EXPORT_GROUP`` reads it
``{p}fbtenants``                   SET of tenants that have a feedback stream
``{p}fbonce:{tenant}:{resp}:{key}`` the feedback id a key already gave a response (one per key and response)
``{p}fbidem:{tenant}:{key}:{h}``   the feedback id of an ``Idempotency-Key`` (``h``: its sha256), 24 h TTL
``{p}fbresp:{tenant}:{resp}``      SET of the feedback ids on one response
``{p}user:{tenant}:{user_hash}``   SET of ``resp:{id}`` / ``fb:{id}`` members for one OpenAI ``user``
``{p}tomb:{tenant}``               SET of erased ids (``resp:{id}`` / ``fb:{id}``): every later export skips them
``{p}respowner:{id}``              the tenant that got response ``id`` (every retention level, ``off`` too;
                                   TTL: the record's plus ``owner_extra_days``): feedback from another
                                   tenant is a 404, from the owner's keys accepted even without a record
=================================  =====================================================================

Stream entries: ``op=add`` with ``id`` (the feedback id) and ``record`` (the FeedbackRecord JSON);
``op=erase`` with ``ids`` (a JSON list of the tombstoned members, ``fb:{id}`` / ``resp:{id}``), written after the
records were deleted and the tombstones added.
"""

from __future__ import annotations

import hashlib
import hmac

from guardserve.app.feedback.model import FeedbackRecord, ResponseRecord

STREAM_MAXLEN = 1_000_000  # approximate (~) bound per tenant stream; older entries are trimmed by Redis
EXPORT_GROUP = "export"


def response_key(p: str, tenant: str, response_id: str) -> str:
    return f"{p}resp:{tenant}:{response_id}"


def feedback_key(p: str, tenant: str, feedback_id: str) -> str:
    return f"{p}fb:{tenant}:{feedback_id}"


def stream_key(p: str, tenant: str) -> str:
    return f"{p}fbs:{tenant}"


def tenants_key(p: str) -> str:
    return f"{p}fbtenants"


def once_key(p: str, tenant: str, response_id: str, key_id: str) -> str:
    return f"{p}fbonce:{tenant}:{response_id}:{key_id}"


def idempotency_key(p: str, tenant: str, key_id: str, offered: str) -> str:
    return f"{p}fbidem:{tenant}:{key_id}:{hashlib.sha256(offered.encode()).hexdigest()}"


def by_response_key(p: str, tenant: str, response_id: str) -> str:
    return f"{p}fbresp:{tenant}:{response_id}"


def user_key(p: str, tenant: str, user_hash: str) -> str:
    return f"{p}user:{tenant}:{user_hash}"


def tombstones_key(p: str, tenant: str) -> str:
    return f"{p}tomb:{tenant}"


def owner_key(p: str, response_id: str) -> str:
    return f"{p}respowner:{response_id}"


def user_hash(secret: bytes, user: str) -> str:
    """A keyed hash of an OpenAI ``user`` value: stable per deployment, useless without the secret."""
    return hmac.new(secret, user.encode(), hashlib.sha256).hexdigest()[:32]


def dump(record: ResponseRecord | FeedbackRecord) -> bytes:
    return record.model_dump_json().encode()


def load_response(data: bytes | str) -> ResponseRecord:
    return ResponseRecord.model_validate_json(data)


def load_feedback(data: bytes | str) -> FeedbackRecord:
    return FeedbackRecord.model_validate_json(data)
