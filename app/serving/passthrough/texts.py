"""Where the text is in an OpenAI body: the places a guard reads and may rewrite, and nothing else.

A :class:`Slot` is one string inside a request or response body (a message's content, a text part of a multimodal
message, a tool call's arguments, a choice's text). Pass-through screens slots and writes the screened text back in
place, so everything else in the body (images, tool schemas, logprobs, fields we do not know) reaches the upstream
or the client exactly as it was.

Input roles, as the guards see them: a tool's result is ``user`` text (it comes from outside, so injection and
toxicity screen it, not only PII); an assistant's earlier tool calls are ``assistant`` text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from guardserve.models.engine import UpstreamError

# fields of a response message / stream delta that reach the reader as text
OUTPUT_FIELDS = ("content", "reasoning_content", "reasoning", "refusal")
_GUARD_ROLES = {"system": "system", "developer": "system", "assistant": "assistant"}  # anything else: user


@dataclass
class Slot:
    holder: dict[str, Any] | list[Any]
    key: Any  # str for a dict, int for a list
    role: str = "user"
    name: str = "content"  # what the slot is, for keying stream screens ("content", "tool:0", ...)

    @property
    def text(self) -> str:
        value = self.holder[self.key]
        return value if isinstance(value, str) else ""

    def set(self, text: str) -> None:
        self.holder[self.key] = text


def chat_input_slots(body: dict[str, Any]) -> list[tuple[int, Slot]]:
    """(message index, slot) for every text a chat request carries into the prompt: contents and text parts,
    participants' names, earlier turns' reasoning and tool or function calls; tool descriptions and schemas under
    index -1. The body was validated as a :class:`~app.protocol.ChatCompletionRequest`, so the shapes of the known
    fields are known."""
    found: list[tuple[int, Slot]] = []
    for i, message in enumerate(body.get("messages") or []):
        role = _GUARD_ROLES.get(message.get("role"), "user")
        content = message.get("content")
        if isinstance(content, str):
            found.append((i, Slot(message, "content", role)))
        elif isinstance(content, list):
            found += [(i, Slot(part, "text", role)) for part in content if part.get("type") == "text"]
        if isinstance(message.get("name"), str):  # chat templates may render a participant's name into the prompt
            found.append((i, Slot(message, "name", role)))
        # chat templates of reasoning models render earlier turns' reasoning into the prompt
        found += [(i, Slot(message, f, role)) for f in OUTPUT_FIELDS[1:] if isinstance(message.get(f), str)]
        for call in message.get("tool_calls") or []:
            found.append((i, Slot(call["function"], "arguments", "assistant")))
        function_call = message.get("function_call")
        if isinstance(function_call, dict) and isinstance(function_call.get("arguments"), str):
            found.append((i, Slot(function_call, "arguments", "assistant")))
    for tool in body.get("tools") or []:
        found += [(-1, slot) for slot in _strings(tool.get("function"), "system")]
    return found


def _strings(value: Any, role: str, depth: int = 0) -> list[Slot]:
    """Every string value (not key) in a JSON value: a tool's description and its parameter schema's."""
    if depth > 32:
        return []
    if isinstance(value, dict):
        return [
            slot
            for key, item in value.items()
            for slot in ([Slot(value, key, role)] if isinstance(item, str) else _strings(item, role, depth + 1))
        ]
    if isinstance(value, list):
        return [
            slot
            for i, item in enumerate(value)
            for slot in ([Slot(value, i, role)] if isinstance(item, str) else _strings(item, role, depth + 1))
        ]
    return []


def list_input_slots(body: dict[str, Any], field: str) -> list[Slot]:
    """The text(s) of a ``prompt`` or ``input`` that is a string or a list of strings (token ids carry none)."""
    value = body.get(field)
    if isinstance(value, str):
        return [Slot(body, field)]
    if isinstance(value, list):
        return [Slot(value, i) for i, item in enumerate(value) if isinstance(item, str)]
    return []


def message_slots(message: dict[str, Any], what: str) -> list[Slot]:
    """The texts of an upstream's answer message or stream delta: content and the like, tool-call arguments.

    The upstream is not trusted: a text field that is not a string is an :class:`UpstreamError` (it would otherwise
    reach the client unscreened)."""
    found = []
    for field in OUTPUT_FIELDS:
        value = message.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise UpstreamError(f"upstream sent a malformed {what}: '{field}' is not a string")
        found.append(Slot(message, field, "assistant", field))
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list):
        raise UpstreamError(f"upstream sent a malformed {what}: 'tool_calls' is not a list")
    for position, call in enumerate(calls or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise UpstreamError(f"upstream sent a malformed {what}: a tool call without a function object")
        index = call.get("index", position)
        if not isinstance(index, int) or isinstance(index, bool):
            raise UpstreamError(f"upstream sent a malformed {what}: a tool call's 'index' is not an integer")
        found += _arguments(function, f"tool:{index}", what)
    function_call = message.get("function_call")  # the legacy single call
    if function_call is not None:
        if not isinstance(function_call, dict):
            raise UpstreamError(f"upstream sent a malformed {what}: 'function_call' is not an object")
        found += _arguments(function_call, "function", what)
    return found


def _arguments(function: dict[str, Any], name: str, what: str) -> list[Slot]:
    arguments = function.get("arguments")
    if arguments is None:
        return []
    if not isinstance(arguments, str):
        raise UpstreamError(f"upstream sent a malformed {what}: tool call arguments are not a string")
    return [Slot(function, "arguments", "assistant", name)]


def choice_text_slot(choice: dict[str, Any], what: str) -> list[Slot]:
    """A text completion choice's ``text``."""
    value = choice.get("text")
    if value is None:
        return []
    if not isinstance(value, str):
        raise UpstreamError(f"upstream sent a malformed {what}: 'text' is not a string")
    return [Slot(choice, "text", "assistant", "text")]


def choices_of(data: dict[str, Any], what: str) -> list[dict[str, Any]]:
    choices = data.get("choices")
    if choices is None:
        return []
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise UpstreamError(f"upstream sent a malformed {what}: 'choices' is not a list of objects")
    return choices


def finish_of(choice: dict[str, Any], what: str) -> str | None:
    value = choice.get("finish_reason")
    if value is not None and not isinstance(value, str):
        raise UpstreamError(f"upstream sent a malformed {what}: 'finish_reason' is not a string")
    return value


def usage_counts(data: dict[str, Any], what: str) -> tuple[int | None, int | None]:
    """(prompt_tokens, completion_tokens) of a body's ``usage`` (None where absent); a malformed one raises."""
    usage = data.get("usage")
    if usage is None:
        return None, None
    if not isinstance(usage, dict):
        raise UpstreamError(f"upstream sent a malformed {what}: 'usage' is not an object")
    counts = []
    for field in ("prompt_tokens", "completion_tokens"):
        value = usage.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise UpstreamError(f"upstream sent a malformed usage: '{field}' is not a token count")
        counts.append(value)
    return counts[0], counts[1]
