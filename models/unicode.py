"""Text that any JSON encoder and the guards accept."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

LONE_SURROGATE = re.compile("[\\ud800-\\udfff]")  # in a Python str: an unpaired half of a UTF-16 pair


def valid_unicode(text: str) -> str:
    """Lone surrogates become U+FFFD, as a UTF-8 decoder does with bytes it cannot read. JSON lets a peer escape one
    (``"\\\\ud800"``); Presidio cannot encode it and orjson refuses it, so left in, it becomes a 5xx or a cut stream."""
    return LONE_SURROGATE.sub("\ufffd", text)


def loads_valid(data: bytes | str) -> Any:
    """Parse JSON into Python objects whose strings are all valid Unicode (see :func:`valid_unicode`): orjson first
    (fast; it refuses lone surrogates), the standard library and a repair pass only for a document that has one."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return _repaired(json.loads(data))  # still malformed: ValueError, as from orjson


def _repaired(value: Any) -> Any:
    if isinstance(value, str):
        return valid_unicode(value)
    if isinstance(value, list):
        return [_repaired(v) for v in value]
    if isinstance(value, dict):
        return {valid_unicode(k): _repaired(v) for k, v in value.items()}
    return value
