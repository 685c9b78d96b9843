"""Guardrails around one request: screen the prompt, the answer, or the stream, and explain what was done.

:func:`begin` picks the policy (the key's, or the default; a request may only switch to a stricter one) and returns a
:class:`GuardSession` that holds the request's pseudonym mapping (in memory, for this request only) and the
decisions, which end up in the response's ``guardrails`` field, its ``x-guardrails-*`` headers and on the request
context (for metrics and audit: types, counts and actions, never values).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from guardserve.app.context import RequestContext
from guardserve.app.errors import SERVER_ERROR, APIError
from guardserve.app.observability.recorder import GuardStage, MetricsRecorder
from guardserve.app.services import Services
from guardserve.guardrails.gate import GuardrailsBusyError
from guardserve.guardrails.pii.pseudonyms import Pseudonymizer
from guardserve.guardrails.runtime import Policy, PolicyNotAllowedError, UnknownPolicyError
from guardserve.guardrails.streaming import StreamScreen
from guardserve.guardrails.types import Action, Decision, Stage
from guardserve.models.engine import ChatMessage, FinishReason, GenerationRequest


def begin(services: Services, ctx: RequestContext, requested: str | None) -> GuardSession:
    guardrails = services.guardrails
    if guardrails is None:
        if requested is not None:
            raise APIError(
                400, "Guardrails are disabled on this server.", param="guardrails", code="policy_not_allowed"
            )
        return GuardSession(None, ctx, services)
    try:
        policy = guardrails.resolve(ctx.policy, requested)
    except PolicyNotAllowedError as exc:
        raise APIError(403, str(exc), param="guardrails.policy", code="policy_not_allowed") from exc
    except UnknownPolicyError as exc:  # fail closed: never serve a key without the screening it was given
        raise APIError(503, str(exc), type=SERVER_ERROR, code="guardrail_unavailable") from exc
    ctx.policy = policy.name
    return GuardSession(policy, ctx, services)


class GuardSession:
    def __init__(self, policy: Policy | None, ctx: RequestContext, services: Services) -> None:
        self.policy = policy
        self._ctx = ctx
        self.metrics = self._metrics = services.metrics
        self._span = services.tracer.span
        self._retry_after = services.settings.retry_after_seconds
        self._pseudonyms = Pseudonymizer() if policy is not None and policy.pseudonymizes else None
        self.decisions: dict[Stage, list[Decision]] = {Stage.INPUT: [], Stage.OUTPUT: []}
        self._where: list[int | None] = []  # screened input text -> request message (for the explanation's spans)

    @property
    def active(self) -> bool:
        return self.policy is not None

    def _record(self, stage: Stage, decisions: list[Decision]) -> None:
        """Keep the decisions for the explanation and the request context; count them (streams: once, at the end)."""
        self.decisions[stage] = decisions
        self._ctx.guard_decisions.extend(decisions)
        record_guard_metrics(self._metrics, stage.value, decisions)

    async def screen_input(self, request: GenerationRequest) -> GenerationRequest:
        """Screen every message; returns the request the engine may see. Raises 400 (blocked) or 503 (guard down)."""
        if self.policy is None or not self.policy.input_guards:
            return request
        if request.messages is not None:
            pairs = [(m.role, m.content) for m in request.messages]
        else:
            pairs = [("user", request.prompt or "")]
        texts = await self.screen_texts(pairs, where=list(range(len(pairs))))
        if request.messages is not None:
            messages = tuple(ChatMessage(m.role, text) for m, text in zip(request.messages, texts, strict=True))
            return dataclasses.replace(request, messages=messages)
        return dataclasses.replace(request, prompt=texts[0])

    async def screen_texts(
        self, pairs: Sequence[tuple[str, str]], only: str | None = None, where: Sequence[int | None] | None = None
    ) -> list[str]:
        """Screen (role, text) pairs with the input guards (``only``: just the guard of that name); returns the texts
        the engine may see, in order. Raises 400 (blocked) or 503 (guard down or busy). ``where``: for each text,
        the index of the request message it is (the whole content), or None: the explanation reports the findings'
        offsets in those messages (``spans``), so a client can show what was replaced."""
        if self.policy is None or not self.policy.input_guards:
            return [text for _, text in pairs]
        self._where = list(where) if where is not None else []
        try:
            outcome = await self.policy.screen_input(pairs, self._pseudonyms, self._span, only=only)
        except GuardrailsBusyError:
            raise guardrails_busy(self._retry_after, self.headers()) from None
        self._record(Stage.INPUT, outcome.decisions)
        blocked = outcome.blocked
        if blocked is not None:
            raise self._refusal(blocked)
        return list(outcome.texts)

    async def screen_output(self, text: str, finish: FinishReason) -> tuple[str | None, FinishReason]:
        """Screen a whole answer: (text to return, finish reason). A block returns no text and content_filter."""
        if self.policy is None:
            return text, finish
        outcome = await self.policy.screen_output(text, self._pseudonyms, self._span)
        self._record(Stage.OUTPUT, outcome.decisions)
        if outcome.blocked is not None:
            return None, "content_filter"
        return outcome.texts[0], finish

    async def screen_outputs(self, groups: list[list[str]]) -> list[list[str] | None]:
        """Screen several answers at once (each of ``n`` choices: its content and tool-call arguments); a group is
        blocked (None) when any of its texts is. The decisions of all of them are recorded together."""
        if self.policy is None:
            return [list(group) for group in groups]
        policy = self.policy
        flat = [text for group in groups for text in group]
        outcomes = await asyncio.gather(*(policy.screen_output(t, self._pseudonyms, self._span) for t in flat))
        self._record(Stage.OUTPUT, [d for outcome in outcomes for d in outcome.decisions])
        results: list[list[str] | None] = []
        at = 0
        for group in groups:
            mine = outcomes[at : at + len(group)]
            at += len(group)
            blocked = any(o.blocked is not None for o in mine)
            results.append(None if blocked else [o.texts[0] for o in mine])
        return results

    async def screen_message(self, text: str) -> str | None:
        """``text`` through the output guards without recording a decision (an error message, logprob tokens):
        the text to show, or None where a guard blocks it."""
        if self.policy is None or not text:
            return text
        outcome = await self.policy.screen_output(text, self._pseudonyms, self._span)
        return None if outcome.blocked is not None else outcome.texts[0]

    def stream(self) -> StreamScreen | None:
        return self.policy.stream(self._pseudonyms) if self.policy is not None else None

    def stream_finished(self, screen: StreamScreen) -> None:
        self._record(Stage.OUTPUT, screen.decisions())

    def streams_finished(self, screens: Iterable[StreamScreen]) -> None:
        self._record(Stage.OUTPUT, [d for screen in screens for d in screen.decisions()])

    def _refusal(self, blocked: Decision) -> APIError:
        assert self.policy is not None
        headers = self.headers()
        if blocked.error is not None:
            headers["Retry-After"] = "1"
            return APIError(
                503,
                f"The '{blocked.guard}' guard could not screen the prompt; policy '{self.policy.name}' fails closed.",
                type=SERVER_ERROR,
                code="guardrail_unavailable",
                headers=headers,
            )
        kinds = sorted({f.entity_type for f in blocked.findings})
        detail = f" ({', '.join(kinds)})" if kinds else ""
        code = "pii_detected" if blocked.guard == "pii" else "content_filter"
        return APIError(
            400,
            f"The prompt was blocked by guardrails policy '{self.policy.name}': {blocked.guard}{detail}.",
            param="messages",
            code=code,
            headers=headers,
        )

    # --- explanations ---------------------------------------------------------------------------------------

    def explanation(self) -> dict[str, Any] | None:
        if self.policy is None:
            return None
        return {
            "policy": self.policy.name,
            "input": [_explain(d, self._where) for d in self.decisions[Stage.INPUT] if _reportable(d)],
            "output": [_explain(d) for d in self.decisions[Stage.OUTPUT] if _reportable(d)],
        }

    def headers(self) -> dict[str, str]:
        if self.policy is None:
            return {}
        headers = {"x-guardrails-policy": self.policy.name}
        for stage in (Stage.INPUT, Stage.OUTPUT):
            acted = [d for d in self.decisions[stage] if _reportable(d)]
            if acted or self.decisions[stage]:
                headers[f"x-guardrails-{stage.value}"] = "; ".join(_summary(d) for d in acted) or "none"
        return headers


def guardrails_busy(retry_after: int, headers: dict[str, str] | None = None) -> APIError:
    """503 for a full guard stage: refused before any guard work, so retrying later is right."""
    return APIError(
        503,
        "The guardrails are at capacity; please retry shortly.",
        type=SERVER_ERROR,
        code="guardrails_busy",
        headers={**(headers or {}), "Retry-After": str(retry_after)},
    )


def record_guard_metrics(metrics: MetricsRecorder, stage: GuardStage, decisions: Iterable[Decision]) -> None:
    """One action (``error`` when the guard failed) and one duration per decision."""
    for d in decisions:
        metrics.guard_action(d.guard, stage, "error" if d.error else d.action.value)
        metrics.guard_duration(d.guard, stage, d.latency_ms / 1000)


def _reportable(d: Decision) -> bool:
    return d.action is not Action.ALLOW or d.error is not None


def _explain(d: Decision, where: Sequence[int | None] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"guard": d.guard, "action": d.action.value, "latency_ms": round(d.latency_ms, 2)}
    if d.findings:
        out["findings"] = d.entity_counts()
    spans = [[where[t], start, end, kind] for t, start, end, kind in d.spans if t < len(where) and where[t] is not None]
    if spans:  # [message index, start, end, type]: offsets in code points of that message's text, never values
        out["spans"] = spans
    if d.score is not None:
        out["score"] = round(d.score, 4)
    if d.error is not None:
        out["error"] = d.error
    return out


def _summary(d: Decision) -> str:
    counts = ",".join(f"{k}:{v}" for k, v in sorted(d.entity_counts().items()))
    return f"{d.guard}={d.action.value}" + (f"({counts})" if counts else "")
