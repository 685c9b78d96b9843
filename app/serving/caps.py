"""Size caps, checked before anything costly (token counting, admission, guards): each refusal names its cap.

Guard work grows with the text (Presidio most of all), so an unbounded prompt or message list would buy unbounded
CPU time before any limit could refuse it. The caps live in :class:`guardserve.app.settings.RequestCaps`.
"""

from __future__ import annotations

from collections.abc import Sequence

from guardserve.app.errors import APIError
from guardserve.app.settings import RequestCaps

PROMPT_TOO_LARGE = "prompt_too_large"
TOO_MANY = "too_many_inputs"


def check_messages(count: int, caps: RequestCaps) -> None:
    if count > caps.max_messages:
        raise APIError(
            400,
            f"Too many messages: {count}. This server accepts at most {caps.max_messages} per request (max_messages).",
            param="messages",
            code=TOO_MANY,
        )


def check_prompt_chars(chars: int, caps: RequestCaps, param: str) -> None:
    if chars > caps.max_prompt_chars:
        raise APIError(
            413,
            f"The prompt is too large: {chars} characters. This server accepts at most {caps.max_prompt_chars} "
            "characters per request (max_prompt_chars).",
            param=param,
            code=PROMPT_TOO_LARGE,
        )


def check_moderation(texts: Sequence[str], caps: RequestCaps) -> None:
    if not texts or len(texts) > caps.max_moderation_inputs:
        raise APIError(
            400,
            f"'input' must hold 1 to {caps.max_moderation_inputs} texts (max_moderation_inputs); got {len(texts)}.",
            param="input",
            code="invalid_value" if not texts else TOO_MANY,
        )
    chars = sum(len(t) for t in texts)
    if chars > caps.max_moderation_chars:
        raise APIError(
            413,
            f"The input is too large: {chars} characters. This server accepts at most {caps.max_moderation_chars} "
            "characters per moderation call (max_moderation_chars).",
            param="input",
            code=PROMPT_TOO_LARGE,
        )
