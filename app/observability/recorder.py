"""The recording API that guards, the rate limiter and feedback call: a protocol, its label values, a no-op.

Features receive a :class:`MetricsRecorder` (``Services.metrics``) and call it with values from the fixed sets
below, never with anything taken from a request. Guard and limit *names* are code- or operator-defined (the
guard's name in the policy, the kind of limit); they are checked against a pattern and capped in number, so a
mistake degrades to the value ``other`` instead of flooding the metrics backend.
"""

from __future__ import annotations

from typing import Literal, Protocol, get_args

GuardStage = Literal["input", "output", "moderation"]  # moderation: /v1/moderations screening a text
# guardrails' Action values, plus "error" (the guard itself failed, whatever the policy then did)
GuardAction = Literal["allow", "flag", "mask", "redact", "placeholder", "hash", "pseudonymize", "block", "error"]
RateLimitResult = Literal["allowed", "limited", "fail_open", "fail_closed"]
FeedbackRating = Literal["up", "down"]
RecordResult = Literal["written", "failed"]  # a response record (guardserve.app.feedback) stored, or not

GUARD_STAGES: tuple[str, ...] = get_args(GuardStage)
GUARD_ACTIONS: tuple[str, ...] = get_args(GuardAction)
RATELIMIT_RESULTS: tuple[str, ...] = get_args(RateLimitResult)
FEEDBACK_RATINGS: tuple[str, ...] = get_args(FeedbackRating)
RECORD_RESULTS: tuple[str, ...] = get_args(RecordResult)


class MetricsRecorder(Protocol):
    """What features record. Every method is cheap, thread-safe and never raises."""

    def guard_action(self, guard: str, stage: GuardStage, action: GuardAction) -> None:
        """A guard ran and decided: ``guardserve_guard_actions_total{guard,stage,action}`` += 1.

        ``action``: ``allow`` (nothing found), ``block`` (request/answer refused), ``mask``/``redact``/
        ``placeholder``/``hash``/``pseudonymize`` (content changed), ``flag`` (let through, noted), ``error`` (the
        guard itself failed, whatever the fallback).
        """
        ...

    def guard_duration(self, guard: str, stage: GuardStage, seconds: float) -> None:
        """How long one guard call took: ``guardserve_guard_duration_seconds{guard,stage}``."""
        ...

    def ratelimit_decision(self, limit: str, result: RateLimitResult) -> None:
        """One limiter decision: ``guardserve_ratelimit_decisions_total{limit,result}`` += 1.

        ``limit`` is the kind of limit (``requests``, ``tokens``, ``concurrency``), never a key or tenant.
        ``result``: ``allowed``, ``limited`` (429), ``fail_open`` / ``fail_closed`` (backend unreachable: let
        through / refused).
        """
        ...

    def ratelimit_degraded(self, degraded: bool) -> None:
        """The limiter's shared backend is unreachable (True) or back (False).

        ``guardserve_ratelimit_backend_degraded``: 1 while any worker reports it degraded.
        """
        ...

    def engine_error(self, engine: str, kind: str) -> None:
        """An engine failed, or sent what the gateway cannot pass on (a malformed answer):
        ``guardserve_engine_errors_total{engine,kind}`` += 1 (``kind``: an :class:`~models.engine.EngineError` kind)."""
        ...

    def feedback(self, rating: FeedbackRating) -> None:
        """A feedback record was durably accepted: ``guardserve_feedback_total{rating}`` += 1."""
        ...

    def feedback_record(self, result: RecordResult) -> None:
        """A response record was written or not (store down, scrubbing failed, too many pending):
        ``guardserve_feedback_records_total{result}`` += 1."""
        ...

    def feedback_export_lag(self, entries: int) -> None:
        """Feedback stream entries not yet read by the export: ``guardserve_feedback_export_lag``."""
        ...


class NoMetrics:
    """The recorder when metrics are off (and the default in ``Services``)."""

    def guard_action(self, guard: str, stage: GuardStage, action: GuardAction) -> None:
        return None

    def guard_duration(self, guard: str, stage: GuardStage, seconds: float) -> None:
        return None

    def ratelimit_decision(self, limit: str, result: RateLimitResult) -> None:
        return None

    def ratelimit_degraded(self, degraded: bool) -> None:
        return None

    def engine_error(self, engine: str, kind: str) -> None:
        return None

    def feedback(self, rating: FeedbackRating) -> None:
        return None

    def feedback_record(self, result: RecordResult) -> None:
        return None

    def feedback_export_lag(self, entries: int) -> None:
        return None
