"""Answers with runs of more than 512 characters without a space (the stream buffer's ``max_hold_chars``), with PII
around and inside them: a minified JSON list of users, a JWT, a base64 data URI.

``SECRETS[name]`` lists values the default output policy masks that must never appear in a screened answer.
"""

from __future__ import annotations

import base64
import json

_DOMAIN = "customer.accounts@billing.example.org"
_USERS = [
    {"id": i, "first": first, "last": last, "email": f"{first.lower()}.{last.lower()}.{_DOMAIN}", "active": True}
    for i, (first, last) in enumerate(
        [
            ("Maria", "Gonzalez"),
            ("James", "Wilson"),
            ("Anna", "Schmidt"),
            ("David", "Miller"),
            ("Sophie", "Martin"),
            ("Robert", "Johnson"),
            ("Laura", "Fischer"),
            ("Thomas", "Anderson"),
            ("Emily", "Clarke"),
        ],
        start=1,
    )
]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt() -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {"sub": "1234567890", "roles": ["admin", "billing", "support"] * 8, "iat": 1516239022, "exp": 1916239022}
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{_b64url(bytes(range(256))[:96])}"


def _data_uri() -> str:
    png = b"\x89PNG\r\n\x1a\n" + bytes((i * 37 + 11) % 256 for i in range(600))
    return "data:image/png;base64," + base64.b64encode(png).decode()


JSON_USERS = json.dumps(_USERS, separators=(",", ":"))
JWT = _jwt()
DATA_URI = _data_uri()

ANSWERS = {
    "json": f"Here are the users: {JSON_USERS} Write to maria.gonzalez@example.org with questions.",
    "jwt": f"Hello Maria Gonzalez, your token is {JWT} and the admin is james.wilson@example.org today.",
    "data_uri": f"Dear Anna Schmidt, the logo is {DATA_URI} sent by david.miller@example.org yesterday.",
}
SECRETS: dict[str, list[str]] = {
    "json": [str(u["email"]) for u in _USERS],
    "jwt": ["Maria Gonzalez", "james.wilson@example.org"],
    "data_uri": ["Anna Schmidt", "david.miller@example.org"],
}
RUNS = {"json": JSON_USERS, "jwt": JWT, "data_uri": DATA_URI}  # each longer than 512 characters, no spaces
