"""Remember the screening of texts that come back unchanged request after request (a deployment's system prompt).

Every chat request resends its system prompt; screening it costs a full NER pass each time although the answer
cannot change while the text and the guard's configuration do not. :class:`ScreeningCache` keeps a bounded LRU map
from a keyed hash of (guard configuration, text) to the guard's :class:`~guardrails.guards.Inspection`: entity
types, offsets and scores, never the text. The key is an HMAC with a random per-process secret, so the cache holds
nothing from which a text could be recovered or tested for (a short value such as an e-mail address cannot be
confirmed by hashing guesses), and nothing of it is ever logged. Transforms still run per request on the request's
own text (pseudonyms stay per request); only the inspection is reused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guardserve.guardrails.guards import Inspection


class ScreeningCache:
    def __init__(self, max_entries: int = 1024, max_text_chars: int = 65_536) -> None:
        self._entries: OrderedDict[bytes, Inspection] = OrderedDict()
        self._max = max_entries
        self._max_text = max_text_chars  # longer texts are screened each time (rare; keeps the key cost bounded)
        self._secret = secrets.token_bytes(32)
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def key(self, guard_key: str, text: str) -> bytes | None:
        if self._max <= 0 or len(text) > self._max_text:
            return None
        message = guard_key.encode() + b"\0" + text.encode("utf-8", "surrogatepass")
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def get(self, key: bytes) -> Inspection | None:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found

    def put(self, key: bytes, inspection: Inspection) -> None:
        self._entries[key] = inspection
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
