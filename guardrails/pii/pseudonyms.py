"""Pseudonymize-and-restore: the model sees ``<PERSON_1>``, the caller gets the original back.

One :class:`Pseudonymizer` lives for one request. The same value gets the same placeholder in every message of the
conversation (so the model can refer back to it), and the mapping is dropped with the request: it is never logged
or stored. :class:`StreamRestorer` restores placeholders in streamed text, holding back a ``<PERS`` that might be
the start of a placeholder until the next chunk decides it.
"""

from __future__ import annotations

import re

_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d+)>")
_PARTIAL = re.compile(r"<[A-Z0-9_]*$")


class Pseudonymizer:
    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._by_placeholder: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._by_placeholder)

    def placeholder(self, entity_type: str, value: str) -> str:
        key = (entity_type, value)
        existing = self._by_value.get(key)
        if existing is not None:
            return existing
        n = self._counts.get(entity_type, 0) + 1
        self._counts[entity_type] = n
        tag = f"<{entity_type}_{n}>"
        self._by_value[key] = tag
        self._by_placeholder[tag] = value
        return tag

    def restore(self, text: str) -> str:
        if not self._by_placeholder:
            return text
        return _PLACEHOLDER.sub(lambda m: self._by_placeholder.get(m.group(0), m.group(0)), text)

    def longest_placeholder(self) -> int:
        return max((len(p) for p in self._by_placeholder), default=0)

    def stream(self) -> StreamRestorer:
        return StreamRestorer(self)


class StreamRestorer:
    def __init__(self, pseudonymizer: Pseudonymizer) -> None:
        self._p = pseudonymizer
        self._pending = ""
        self._limit = pseudonymizer.longest_placeholder()

    def push(self, text: str) -> str:
        if not len(self._p):
            return text
        self._pending += text
        cut = len(self._pending)
        partial = _PARTIAL.search(self._pending)
        if partial is not None and len(self._pending) - partial.start() < self._limit:
            cut = partial.start()
        out, self._pending = self._pending[:cut], self._pending[cut:]
        return self._p.restore(out)

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return self._p.restore(out)
