"""Unicode normalisation (NFC/NFKC), and removal of control and zero-width characters."""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = re.compile(
    "[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060\ufeff]"
)


def normalize(text: str, form: str) -> str:
    out = _INVISIBLE.sub("", text)
    if form != "none":
        out = unicodedata.normalize(form, out)  # type: ignore[arg-type]
    return out.replace("\r\n", "\n").replace("\r", "\n")
