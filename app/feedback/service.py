"""Feedback for the gateway: response records written after each completion, and the feedback API's logic.

:meth:`FeedbackService.response_finished` is a request finalizer (``ctx.on_finish``): once the answer is over it
hands the record to a background task (bounded: at most ``max_pending_records`` at once), so scrubbing and the
write never delay the answer, nor the next request on the connection. A failed or dropped write is counted
(``guardserve_feedback_records_total{result="failed"}``) and logged without values, never an error to the client.

Ownership: every lookup uses the caller's tenant. Feedback on a response another tenant got, or on one this
gateway never served, is a 404 with the same message (no existence oracle); on one of the caller's tenant whose
record expired or was never kept (retention ``off``) it is accepted with ``record_kept: false``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from guardserve.app.auth.settings import DEV_PEPPER
from guardserve.app.context import RequestContext
from guardserve.app.errors import SERVER_ERROR, APIError, log_unexpected
from guardserve.app.feedback import layout
from guardserve.app.feedback.filestore import FileFeedbackStore
from guardserve.app.feedback.model import FeedbackRecord, GuardSummary, Message, ResponseRecord, Retention
from guardserve.app.feedback.scrub import PIIScrubber, Scrubber, ScrubError
from guardserve.app.feedback.settings import FeedbackSettings
from guardserve.app.feedback.store import FeedbackStore, FeedbackUnavailableError, RedisFeedbackStore
from guardserve.app.observability.recorder import MetricsRecorder, NoMetrics
from guardserve.app.rollout import version_key
from guardserve.app.settings import Settings
from guardserve.app.store.backend import RedisBackend
from guardserve.models.checkpoint import checkpoint_sha256
from guardserve.models.registry import STABLE

log = logging.getLogger(__name__)

PENDING_CLOSE_S = 10.0  # at shutdown, record writes still pending get this long
RETENTIONS: tuple[Retention, ...] = ("off", "metadata", "scrubbed")


def unavailable(retry_after: int, what: str = "Feedback cannot be stored right now") -> APIError:
    return APIError(
        503,
        f"{what}; please retry shortly (nothing was acknowledged).",
        type=SERVER_ERROR,
        code="feedback_unavailable",
        headers={"Retry-After": str(retry_after)},
    )


def response_not_found(response_id: str) -> APIError:
    return APIError(404, f"No response with id '{response_id}'.", param="response_id", code="response_not_found")


def feedback_not_found(feedback_id: str) -> APIError:
    return APIError(404, f"No feedback with id '{feedback_id}'.", param="feedback_id", code="feedback_not_found")


class FeedbackService:
    def __init__(
        self,
        settings: FeedbackSettings,
        store: FeedbackStore,
        scrubber: Scrubber,
        user_secret: bytes,
        metrics: MetricsRecorder | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.scrubber = scrubber
        self._user_secret = user_secret
        self.metrics: MetricsRecorder = metrics or NoMetrics()
        self.checkpoints: dict[str, str | None] = {}  # served model version (app.rollout.version_key) -> sha256
        # response id -> its record's write while it runs (kept referenced; feedback on it waits for it)
        self._writing: dict[str, asyncio.Task[None]] = {}
        self._lag_watch: asyncio.Task[None] | None = None
        self._warming: asyncio.Future[Any] | None = None  # the scrubber's engine loading, off the loop

    async def warmed(self) -> None:
        """Return once the scrubber's engine has loaded (or failed to: the first scrub says why)."""
        if self._warming is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._warming)

    @classmethod
    def build(
        cls, settings: FeedbackSettings, store: FeedbackStore, pepper: str, metrics: MetricsRecorder
    ) -> FeedbackService:
        secret = settings.user_hash_secret.get_secret_value() if settings.user_hash_secret else None
        user_secret = (secret or hmac.new(pepper.encode(), b"feedback-user", hashlib.sha256).hexdigest()).encode()
        scrubber = PIIScrubber(settings.scrub_workers, settings.scrub_queue, settings.scrub_timeout_s)
        return cls(settings, store, scrubber, user_secret, metrics)

    async def start(self, models: Iterable[Any]) -> None:
        """``models``: every served version (``ServedModel``s, stable and candidates)."""
        await self.store.start()
        if isinstance(self.scrubber, PIIScrubber):
            self._warming = asyncio.wrap_future(self.scrubber.warm())
        await self.learn_versions(models)
        self._lag_watch = asyncio.create_task(self._watch_lag(), name="feedback-export-lag")

    async def learn_versions(self, models: Iterable[Any]) -> None:
        """The checkpoint sha256 of each version records will name (at start and for versions a reload started)."""
        for served in models:
            entry = served.entry
            declared = getattr(entry, "checkpoint_sha256", None)
            if declared is None and entry.checkpoint is not None:
                declared = await asyncio.to_thread(checkpoint_sha256, Path(entry.checkpoint))
            self.checkpoints[version_key(served.name, entry.version)] = declared

    async def _watch_lag(self) -> None:
        """Refresh ``guardserve_feedback_export_lag`` every ``lag_interval_s`` (a store that cannot tell: never)."""
        while True:
            try:
                lag = await self.store.export_lag()
            except FeedbackUnavailableError:
                lag = -1  # unknown while the store is down: keep the last value
            except Exception as exc:  # a bug here must not end the watch, nor any request
                log_unexpected("feedback export lag", exc, None)
                lag = -1
            if lag is None:
                return
            if lag >= 0:
                self.metrics.feedback_export_lag(lag)
            await asyncio.sleep(self.settings.lag_interval_s)

    async def aclose(self) -> None:
        """Let pending record writes finish (bounded), then close the store and the scrubber."""
        if self._lag_watch is not None:
            self._lag_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_watch
        if self._writing:
            _, late = await asyncio.wait(set(self._writing.values()), timeout=PENDING_CLOSE_S)
            for task in late:
                task.cancel()
        await self.store.aclose()
        # off the loop: the pool's threads (the warm-up may still be importing Presidio) end before the app does
        await asyncio.to_thread(self.scrubber.close)

    def checkpoint_of(self, ctx: RequestContext) -> str | None:
        """The checkpoint sha256 of the model version that answered ``ctx`` (None: unknown, or no model)."""
        if ctx.model is None:
            return None
        return self.checkpoints.get(version_key(ctx.model, ctx.model_version or STABLE))

    def user_hash(self, user: str | None) -> str | None:
        return layout.user_hash(self._user_secret, user) if user else None

    def retention_for(self, ctx: RequestContext) -> Retention:
        chosen = ctx.retention or self.settings.retention
        for known in RETENTIONS:
            if chosen == known:
                return known
        return self.settings.retention

    # --- response records -----------------------------------------------------------------------------------

    def response_finished(self) -> Callable[[RequestContext], Awaitable[None]]:
        async def finished(ctx: RequestContext) -> None:
            if not ctx.response_id or ctx.status != 200 or ctx.tenant is None:
                return
            if len(self._writing) >= self.settings.max_pending_records:
                self._failed(ctx, "too many records pending")
                return
            task = asyncio.create_task(self._write(ctx))
            response_id = ctx.response_id
            self._writing[response_id] = task
            task.add_done_callback(lambda _: self._writing.pop(response_id, None))

        return finished

    def _failed(self, ctx: RequestContext, reason: str) -> None:
        self.metrics.feedback_record("failed")
        log.warning("response record not written (%s)", reason, extra={"request_id": ctx.request_id})

    async def _write(self, ctx: RequestContext) -> None:
        try:
            record = await self._record(ctx)
            await self.store.put_response(record, self.settings.ttl_ms, self.settings.owner_ttl_ms)
        except (FeedbackUnavailableError, ScrubError) as exc:
            self._failed(ctx, f"{type(exc).__name__}: {exc}")
        except Exception:
            self.metrics.feedback_record("failed")
            log.exception("response record failed", extra={"request_id": ctx.request_id})
        else:
            self.metrics.feedback_record("written")

    async def _record(self, ctx: RequestContext) -> ResponseRecord:
        retention = self.retention_for(ctx)
        guards = tuple(
            GuardSummary(
                guard=d.guard,
                stage=d.stage.value,
                action="error" if d.error else d.action.value,
                entities=d.entity_counts(),
            )
            for d in ctx.guard_decisions
        )
        messages: tuple[Message, ...] | None = None
        answer: str | None = None
        if retention == "scrubbed" and ctx.transcript is not None:
            texts = [t for _, t in ctx.transcript] + ["".join(ctx.answer_parts or ())]
            scrubbed = await self.scrubber.scrub(texts)
            messages = tuple(Message(role=r, content=t) for (r, _), t in zip(ctx.transcript, scrubbed, strict=False))
            answer = scrubbed[-1]
        assert ctx.tenant is not None
        return ResponseRecord(
            id=ctx.response_id,
            tenant=ctx.tenant,
            key_id=ctx.key_id or "anonymous",
            model=ctx.model or "",
            model_version=ctx.model_version,
            checkpoint_sha256=self.checkpoint_of(ctx),
            created=ctx.created,
            finish_reason=ctx.finish_reason,
            prompt_tokens=ctx.prompt_tokens,
            completion_tokens=ctx.completion_tokens,
            guards=guards,
            user_hash=self.user_hash(ctx.user),
            retention=retention,
            messages=messages,
            answer=answer,
        )

    # --- the feedback API -----------------------------------------------------------------------------------

    async def _guarded(self, operation: Awaitable[Any]) -> Any:
        try:
            return await operation
        except FeedbackUnavailableError:
            raise unavailable(self.settings.retry_after_s) from None

    async def _response(self, tenant: str, response_id: str) -> tuple[ResponseRecord | None, str | None]:
        """The response's record (or, without one, its owner). A client may rate an answer before its record is
        written (the write starts once the response has been sent, here or on another replica): a write running
        here is awaited, any other is polled for, up to ``record_wait_s``; an unknown id is a 404 after that."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.record_wait_s
        while True:
            writing = self._writing.get(response_id)
            if writing is not None:
                await asyncio.wait({writing}, timeout=max(0.0, deadline - loop.time()))
            record = await self._guarded(self.store.get_response(tenant, response_id))
            owner = record.tenant if record else await self._guarded(self.store.owner(response_id))
            if record is not None or owner is not None or loop.time() >= deadline:
                return record, owner
            await asyncio.sleep(0.05)

    async def submit(
        self, ctx: RequestContext, body: Mapping[str, Any], idempotency_key: str | None
    ) -> tuple[FeedbackRecord, bool]:
        """Check ownership, scrub, store durably: (the record, whether it is a replay)."""
        tenant = ctx.tenant or "anonymous"
        response_id = str(body["response_id"])
        record, owner = await self._response(tenant, response_id)
        if record is None and owner != tenant:
            raise response_not_found(response_id)
        texts = [body.get("comment") or "", body.get("preferred") or ""]
        try:
            comment, preferred = await self.scrubber.scrub(texts)
        except ScrubError:
            raise unavailable(self.settings.retry_after_s, "The feedback text cannot be screened right now") from None
        feedback = FeedbackRecord(
            id=f"fb-{uuid.uuid4().hex}",
            response_id=response_id,
            tenant=tenant,
            key_id=ctx.key_id or "anonymous",
            rating=body["rating"],
            categories=tuple(body.get("categories") or ()),
            comment=comment if body.get("comment") is not None else None,
            preferred=preferred if body.get("preferred") is not None else None,
            user_hash=self.user_hash(body.get("user")) or (record.user_hash if record else None),
            record_kept=record is not None,
        )
        stored, replay = await self._guarded(self.store.add_feedback(feedback, idempotency_key))
        if not replay:
            self.metrics.feedback("up" if _positive(stored.rating) else "down")
        return stored, replay

    async def get(self, ctx: RequestContext, feedback_id: str) -> FeedbackRecord:
        record = await self._guarded(self.store.get_feedback(ctx.tenant or "anonymous", feedback_id))
        if record is None:
            raise feedback_not_found(feedback_id)
        assert isinstance(record, FeedbackRecord)
        return record

    async def list(self, ctx: RequestContext, response_id: str) -> list[FeedbackRecord]:
        found: list[FeedbackRecord] = await self._guarded(
            self.store.list_feedback(ctx.tenant or "anonymous", response_id)
        )
        return found

    async def delete(self, ctx: RequestContext, feedback_id: str) -> None:
        if not await self._guarded(self.store.delete_feedback(ctx.tenant or "anonymous", feedback_id)):
            raise feedback_not_found(feedback_id)

    async def erase_response(self, tenant: str, response_id: str) -> int:
        erased: int = await self._guarded(self.store.erase_response(tenant, response_id))
        return erased

    async def erase_user(self, tenant: str, user: str) -> int:
        erased: int = await self._guarded(self.store.erase_user(tenant, layout.user_hash(self._user_secret, user)))
        return erased


def _positive(rating: str | int) -> bool:
    """``up``, or a score of 4-5 (the metric has two values; the stored rating keeps the score)."""
    return rating == "up" or (isinstance(rating, int) and rating >= 4)


def public(record: FeedbackRecord, replay: bool | None = None) -> dict[str, Any]:
    """The API's view of a feedback (never the user hash)."""
    data = record.model_dump(exclude={"user_hash", "tenant", "version"})
    out: dict[str, Any] = {"object": "feedback", **data}
    if not record.record_kept:
        out["note"] = "The response's record expired or was never kept: the feedback is stored as metadata only."
    return out


def build_feedback(
    settings: Settings, backend: RedisBackend | None, metrics: MetricsRecorder
) -> FeedbackService | None:
    """The feedback service the settings ask for: Redis when configured, else the dev-mode file store."""
    fs = settings.feedback
    if not fs.enabled:
        return None
    store: FeedbackStore
    if backend is not None:
        store = RedisFeedbackStore(backend, fs.stream_maxlen, fs.replicas_ack, fs.replicas_timeout_ms)
    else:
        store = FileFeedbackStore(fs.file, fs.memory_records)
    return FeedbackService.build(fs, store, settings.auth.pepper_value() or DEV_PEPPER, metrics)
