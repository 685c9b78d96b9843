"""Held-out values: a stable hash decides, so the split never depends on the seed or on generation order."""

from __future__ import annotations

import hashlib


def held_out(*key: object, fraction: float = 0.1) -> bool:
    digest = hashlib.sha256(":".join(str(k) for k in key).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction
