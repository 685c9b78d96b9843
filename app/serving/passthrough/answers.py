"""Screen an upstream's whole answer in place: every choice's text and tool-call arguments.

A choice the output guards block loses its message (content null, no tool calls) and ends with ``content_filter``;
the other choices are kept. A choice whose text a guard rewrote (a masked e-mail) loses its ``logprobs``: their
token strings would spell what was masked.
"""

from __future__ import annotations

from typing import Any, Literal

from guardserve.app.serving.guarding import GuardSession
from guardserve.app.serving.passthrough.texts import Slot, choice_text_slot, choices_of, finish_of, message_slots
from guardserve.models.engine import UpstreamError

Kind = Literal["chat", "text"]


def answer_slots(choice: dict[str, Any], kind: Kind, what: str) -> list[Slot]:
    finish_of(choice, what)
    if kind == "text":
        return choice_text_slot(choice, what)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise UpstreamError(f"upstream sent a malformed {what}: 'message' is not an object")
    return message_slots(message, what)


def block(choice: dict[str, Any], kind: Kind) -> None:
    if kind == "chat":
        choice["message"] = {"role": "assistant", "content": None}
    else:
        choice["text"] = ""
    choice["finish_reason"] = "content_filter"
    choice["logprobs"] = None


async def screen_answer(data: dict[str, Any], kind: Kind, session: GuardSession) -> None:
    choices = choices_of(data, "completion")
    if not choices:
        raise UpstreamError("upstream sent a malformed completion: no choices")
    groups = [answer_slots(choice, kind, "completion") for choice in choices]
    if not session.active:
        return
    results = await session.screen_outputs([[slot.text for slot in group] for group in groups])
    for choice, group, texts in zip(choices, groups, results, strict=True):
        if texts is None:
            block(choice, kind)
            continue
        changed = False
        for slot, text in zip(group, texts, strict=True):
            changed = changed or text != slot.text
            slot.set(text)
        if choice.get("logprobs") is not None:
            choice["logprobs"] = None if changed else await screened_alternatives(choice["logprobs"], session)


async def screened_alternatives(logprobs: Any, session: GuardSession) -> Any:
    """Logprobs whose chosen tokens spell unchanged text may still list alternatives a guard would change (an
    address the model nearly wrote): those are screened together, and dropped if the guards change them."""
    tokens = _alternative_tokens(logprobs)
    if not tokens:
        return logprobs
    text = " ".join(tokens)
    if await session.screen_message(text) == text:
        return logprobs
    if isinstance(logprobs.get("content"), list):  # chat
        for entry in logprobs["content"]:
            if isinstance(entry, dict):
                entry["top_logprobs"] = []
    if "top_logprobs" in logprobs:  # completions
        logprobs["top_logprobs"] = None
    return logprobs


def _alternative_tokens(logprobs: Any) -> list[str]:
    if not isinstance(logprobs, dict):
        return []
    found: list[str] = []
    for entry in logprobs.get("content") or []:  # chat: content[i].top_logprobs[j].token
        for alternative in (entry.get("top_logprobs") or []) if isinstance(entry, dict) else []:
            if isinstance(alternative, dict) and isinstance(alternative.get("token"), str):
                found.append(alternative["token"])
    for position in logprobs.get("top_logprobs") or []:  # completions: top_logprobs[i] = {token: logprob}
        if isinstance(position, dict):
            found += [token for token in position if isinstance(token, str)]
    return found
