"""Screen an upstream's stream event by event, in place, through the guards' rolling buffers.

Each text a stream carries gets its own :class:`~guardrails.streaming.StreamScreen`, keyed by choice and field: with
``n`` = 2 and tool calls, choice 0's content, choice 0's first call's arguments, choice 1's content ... are screened
separately and released as the screens let them go. Everything else in an event (role, tool-call ids and names,
fields we do not know) passes unchanged.

* A choice that finishes first has its screens closed and their held-back tails added to its last delta.
* A blocked choice ends at once with ``content_filter``; later events for it are dropped; the others go on.
* While output guards run, a choice's ``logprobs`` are held back and sent with its last delta only when the guards
  changed none of its text (their token strings would spell what was masked); otherwise they are dropped.
* Token counts: the upstream's ``usage`` (asked for by the gateway on every stream; before it arrives, each delta
  with text counts as one token); the usage chunk and ``usage``
  fields reach the client only when it asked for them (``stream_options.include_usage``), as with OpenAI.
"""

from __future__ import annotations

import time
from typing import Any

from guardserve.app.context import RequestContext
from guardserve.app.serving.guarding import GuardSession
from guardserve.app.serving.passthrough.answers import Kind, screened_alternatives
from guardserve.app.serving.passthrough.texts import (
    Slot,
    choice_text_slot,
    choices_of,
    finish_of,
    message_slots,
    usage_counts,
)
from guardserve.guardrails.streaming import StreamScreen
from guardserve.models.engine import UpstreamError


class EventScreen:
    def __init__(
        self,
        session: GuardSession,
        ctx: RequestContext,
        kind: Kind,
        model: str,
        include_usage: bool,
        choices: int = 1,
    ) -> None:
        self._session, self._ctx, self._kind, self._model = session, ctx, kind, model
        self._choices = choices  # how many choices the request asked for: each must finish
        self._include_usage = include_usage
        self._screens: dict[tuple[int, str], StreamScreen] = {}
        self._pushed: dict[tuple[int, str], list[str]] = {}  # raw text per screen
        self._sent: dict[tuple[int, str], list[str]] = {}  # released text per screen
        self._held: dict[int, list[Any]] = {}  # logprobs per choice
        self._done: set[int] = set()
        self._seen: set[int] = set()
        self.recorded = not session.active
        self._first = True
        self._usage_seen = False

    def finish_recording(self) -> None:
        """Count what the output guards did (once: at the end, a failure or a disconnect)."""
        if not self.recorded:
            self.recorded = True
            self._session.streams_finished(self._screens.values())

    async def event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The event to send for this upstream event (None: nothing to send)."""
        self._usage(event)
        choices = []
        for choice in choices_of(event, "stream event"):
            index = choice.get("index", 0)
            if not isinstance(index, int) or isinstance(index, bool):
                raise UpstreamError("upstream sent a malformed stream choice: 'index' is not an integer")
            self._seen.add(index)
            if index in self._done:
                continue
            choices.append(await self._choice(index, choice))
        event["choices"] = choices
        event["id"], event["model"] = self._ctx.response_id, self._model
        if not self._include_usage:
            event.pop("usage", None)
            if not choices:
                return None
        if self._session.active and self._first:
            event["guardrails"] = self._session.explanation()
        self._first = False
        return event

    def close(self) -> dict[str, Any] | None:
        """After the last event: one more, with no choices, carrying the guards' explanation (None: no guards).
        A stream that ended before every choice finished was cut: an :class:`UpstreamError` (a choice's held-back
        text is never dropped silently)."""
        self.finish_recording()
        if not self._done or len(self._done) < max(self._choices, len(self._seen)):
            raise UpstreamError("upstream stream ended before every choice had a finish reason")
        if not self._session.active:
            return None
        return {
            "id": self._ctx.response_id,
            "object": self._object,
            "created": self._ctx.created,
            "model": self._model,
            "choices": [],
            "guardrails": self._session.explanation(),
        }

    @property
    def _object(self) -> str:
        return "chat.completion.chunk" if self._kind == "chat" else "text_completion"

    def _usage(self, event: dict[str, Any]) -> None:
        prompt, completion = usage_counts(event, "stream event")
        self._ctx.prompt_tokens = prompt or self._ctx.prompt_tokens
        if completion is not None:
            self._usage_seen = True
            self._ctx.completion_tokens = completion

    def _slots(self, choice: dict[str, Any]) -> list[Slot]:
        if self._kind == "text":
            return choice_text_slot(choice, "stream choice")
        delta = choice.get("delta")
        if delta is None:
            return []
        if not isinstance(delta, dict):
            raise UpstreamError("upstream sent a malformed stream choice: 'delta' is not an object")
        return message_slots(delta, "stream delta")

    async def _choice(self, index: int, choice: dict[str, Any]) -> dict[str, Any]:
        finish_of(choice, "stream choice")
        slots = self._slots(choice)
        if any(slot.text for slot in slots):
            self._tokens()
        if not self._session.active:
            if choice.get("finish_reason") is not None:
                self._finished(index, choice)
            return choice
        if choice.get("logprobs") is not None:
            self._held.setdefault(index, []).append(choice["logprobs"])
            choice["logprobs"] = None
        for slot in slots:
            key = (index, slot.name)
            screen = self._screen(key)
            self._pushed[key].append(slot.text)
            step = await screen.push(slot.text)
            if step.blocked is not None:
                return self._blocked(index, choice)
            slot.set(step.text)
            self._sent[key].append(step.text)
        if choice.get("finish_reason") is not None:
            for (owner, name), screen in list(self._screens.items()):
                if owner != index:
                    continue
                tail = await screen.close()
                if tail.blocked is not None:
                    return self._blocked(index, choice)
                if tail.text:
                    self._add_tail(choice, name, tail.text)
                    self._sent[(owner, name)].append(tail.text)
            await self._release_logprobs(index, choice)
            self._finished(index, choice)
        return choice

    def _screen(self, key: tuple[int, str]) -> StreamScreen:
        screen = self._screens.get(key)
        if screen is None:
            screen = self._screens[key] = self._session.stream()  # type: ignore[assignment]
            self._pushed[key], self._sent[key] = [], []
        assert screen is not None
        return screen

    def _add_tail(self, choice: dict[str, Any], name: str, tail: str) -> None:
        """Add a screen's held-back tail to the choice's last delta (which may have none of that field yet)."""
        if self._kind == "text":
            choice["text"] = (choice.get("text") or "") + tail
            return
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = choice["delta"] = {}
        if name == "function":
            call = delta.get("function_call")
            if not isinstance(call, dict):
                call = delta["function_call"] = {}
            call["arguments"] = (call.get("arguments") or "") + tail
            return
        if not name.startswith("tool:"):
            delta[name] = (delta.get(name) or "") + tail
            return
        index = int(name.removeprefix("tool:"))  # an int: checked when the slot was read
        calls = delta.get("tool_calls")
        if not isinstance(calls, list):
            calls = delta["tool_calls"] = []
        for call in calls:
            if isinstance(call, dict) and call.get("index") == index and isinstance(call.get("function"), dict):
                call["function"]["arguments"] = (call["function"].get("arguments") or "") + tail
                return
        calls.append({"index": index, "function": {"arguments": tail}})

    async def _release_logprobs(self, index: int, choice: dict[str, Any]) -> None:
        held = self._held.pop(index, None)
        if not held:
            return
        changed = any(
            "".join(self._pushed[key]) != "".join(self._sent[key]) for key in self._screens if key[0] == index
        )
        merged = None if changed else merge_logprobs(held)
        choice["logprobs"] = None if merged is None else await screened_alternatives(merged, self._session)

    def _blocked(self, index: int, choice: dict[str, Any]) -> dict[str, Any]:
        self._held.pop(index, None)
        ended: dict[str, Any] = {"index": index, "finish_reason": "content_filter", "logprobs": None}
        if self._kind == "chat":
            ended["delta"] = {}
        else:
            ended["text"] = ""
        self._finished(index, ended)
        return ended

    def _finished(self, index: int, choice: dict[str, Any]) -> None:
        self._done.add(index)
        if index == 0 or self._ctx.finish_reason is None:
            self._ctx.finish_reason = bounded_finish(choice.get("finish_reason"))

    def _tokens(self) -> None:
        """A delta with text: a token, until the upstream's usage says how many there were (a stream cut before its
        usage chunk still counts what was generated)."""
        if not self._usage_seen:
            self._ctx.completion_tokens += 1
        now = time.perf_counter()
        self._ctx.last_token_at = now
        if self._ctx.first_token_at is None:
            self._ctx.first_token_at = now


FINISH_REASONS = frozenset({"stop", "length", "content_filter", "tool_calls", "function_call"})


def bounded_finish(value: object) -> str:
    """A finish reason for records and metric labels: OpenAI's set, anything else ``other``."""
    return value if isinstance(value, str) and value in FINISH_REASONS else "other"


def merge_logprobs(parts: list[Any]) -> Any:
    """Held-back logprobs as one: lists under the same key joined in order (chat ``content``, completions
    ``tokens``/``token_logprobs``/``top_logprobs``/``text_offset``), other values from the last part."""
    if not all(isinstance(part, dict) for part in parts):
        return parts[-1]
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, list) and isinstance(merged.get(key), list):
                merged[key] = merged[key] + value
            else:
                merged[key] = list(value) if isinstance(value, list) else value
    return merged
