"""Bare phone-like numbers that are not phone numbers: identifiers (SKU, order, part, build, ticket...) and unix times.

python-phonenumbers accepts many digit runs as some region's valid number (``2024-504346``, ``1723864114``). A
PHONE_NUMBER finding is dropped when

* it is a unix time: its digits form one 10-digit (seconds) or 13-digit (milliseconds) run in the text, no
  separators, between 1e9 and 2e9 seconds (Sep 2001 - May 2033; no NANP area code starts with 1, so no North
  American number is in that range), or
* it is part of an identifier: glued by ``-``/``_``/``#`` to letters (``ORD-2024-504346``), or a key/label word
  from :data:`NEGATIVE_CONTEXT` stands among the few words before it (``Lot 75-8838-4182``,
  ``created_at=1723864114``, ``for 3 items (06-3652-3595``),

unless it starts with ``+`` or a phone word (:data:`PHONE_CONTEXT`) stands before it: then it stays a phone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from guardserve.guardrails.types import Finding

NEGATIVE_CONTEXT = (
    "sku",
    "order",
    "ord",
    "part",
    "pn",
    "unix",
    "epoch",
    "timestamp",
    "ts",
    "created",
    "updated",
    "modified",
    "build",
    "version",
    "ver",
    "tracking",
    "shipment",
    "invoice",
    "inv",
    "ticket",
    "incident",
    "po",
    "serial",
    "sn",
    "lot",
    "batch",
    "item",
    "items",
    "cart",
    "ref",
    "reference",
    "id",
    "uuid",
    "isbn",
    "model",
    "reading",
)
PHONE_CONTEXT = (
    "phone",
    "tel",
    "telephone",
    "call",
    "mobile",
    "cell",
    "fax",
    "whatsapp",
    "text",
    "sms",
    "contact",
    "reach",
    "dial",
    "ring",
    "joindre",
    "telefon",
    "handy",
    "teléfono",
    "móvil",
)
WINDOW_WORDS = 4  # words before the number that are looked at
EPOCH_SECONDS = (1_000_000_000, 2_000_000_000)

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def is_unix_time(text: str, start: int, end: int) -> bool:
    """The digits at ``[start, end)`` are a whole digit run of 10 (seconds) or 13 (milliseconds) digits, in range."""
    value = text[start:end]
    if not value.isdigit() or (start and text[start - 1].isdigit()) or (end < len(text) and text[end].isdigit()):
        return False
    low, high = EPOCH_SECONDS
    if len(value) == 10:
        return low <= int(value) < high
    if len(value) == 13:
        return low * 1000 <= int(value) < high * 1000
    return False


def _glued_to_letters(text: str, start: int) -> bool:
    """``ORD-2024-504346``, ``SKU_2024...``, ``#A-...``: the number continues an identifier that has letters."""
    i = start
    while i > 0 and text[i - 1] in "-_#/":
        i -= 1
    return i < start and i > 0 and text[i - 1].isalnum()


def _words_before(text: str, start: int, window: int) -> list[str]:
    head = text[max(0, start - 80) : start]
    return [w.lower() for w in _WORD.findall(head)][-window:]


def is_not_a_phone(
    text: str,
    finding: Finding,
    negative: Sequence[str] = NEGATIVE_CONTEXT,
    positive: Sequence[str] = PHONE_CONTEXT,
) -> bool:
    start, end = finding.start, finding.end
    if text[start:end].lstrip("(").startswith("+"):
        return False
    before = _words_before(text, start, WINDOW_WORDS)
    if any(w in positive for w in before):  # a phone word wins over an identifier word
        return False
    if is_unix_time(text, start, end) or _glued_to_letters(text, start):
        return True
    return any(w in negative for w in before)


def drop_non_phones(
    text: str,
    findings: Iterable[Finding],
    negative: Sequence[str] = NEGATIVE_CONTEXT,
    positive: Sequence[str] = PHONE_CONTEXT,
) -> list[Finding]:
    """``findings`` without the PHONE_NUMBER ones that :func:`is_not_a_phone`."""
    return [f for f in findings if f.entity_type != "PHONE_NUMBER" or not is_not_a_phone(text, f, negative, positive)]
