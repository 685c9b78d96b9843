"""API key material: ``gs-<key id>-<secret>``, generated with :mod:`secrets`, stored only as HMAC-SHA256 under a
server-side pepper, compared in constant time.

The key id (12 hex characters) is public: it names the key in the admin API, logs and limits. The secret is 43
URL-safe characters (256 bits). A stolen store gives neither keys nor a way to test guesses without the pepper.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "gs-"
_KEY = re.compile(r"^gs-([0-9a-f]{12})-([A-Za-z0-9_-]{20,128})$")


def new_key_id() -> str:
    return secrets.token_hex(6)


def generate(key_id: str | None = None) -> tuple[str, str]:
    """A fresh key: (key id, full key)."""
    kid = key_id or new_key_id()
    return kid, f"{PREFIX}{kid}-{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    """The key id of a well-formed key, else None."""
    match = _KEY.match(key)
    return match.group(1) if match else None


def keyed_hash(pepper: str, key: str) -> str:
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


def matches(pepper: str, key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(keyed_hash(pepper, key), stored_hash)


def redacted(key: str) -> str:
    """What may be shown of a key: its id, never the secret."""
    kid = key_id_of(key)
    return f"gs-{kid}-…" if kid else "(malformed key)"
