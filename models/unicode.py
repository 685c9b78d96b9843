"""Text that any JSON encoder and the guards accept."""

from __future__ import annotations

import re

LONE_SURROGATE = re.compile("[\\ud800-\\udfff]")  # in a Python str: an unpaired half of a UTF-16 pair


def valid_unicode(text: str) -> str:
    """Lone surrogates become U+FFFD, as a UTF-8 decoder does with bytes it cannot read. JSON lets a peer escape one
    (``"\\\\ud800"``); Presidio cannot encode it and orjson refuses it, so left in, it becomes a 5xx or a cut stream."""
    return LONE_SURROGATE.sub("\ufffd", text)
