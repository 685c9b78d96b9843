"""Markup stripping: HTML/XML tags (script and style bodies too), comments, entities, and our own special-token
strings (``<|end|>`` in raw data would let data forge turn boundaries)."""

from __future__ import annotations

import html
import re

_BLOCKS = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_COMMENTS = re.compile(r"<!--.*?-->", re.DOTALL)
_TAGS = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
_SPECIAL = re.compile(r"<\|[A-Za-z_]+\|>")
_SPACES = re.compile(r"[ \t]{2,}")


def strip_markup(text: str) -> str:
    out = _BLOCKS.sub(" ", text)
    out = _COMMENTS.sub(" ", out)
    out = _TAGS.sub(" ", out)
    out = _SPECIAL.sub(" ", out)
    if "&" in out:
        out = html.unescape(out)
    if out != text:
        out = _SPACES.sub(" ", out).strip()
    return out
