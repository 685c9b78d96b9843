"""Stop sequences on streamed text.

Text that could be the beginning of a stop sequence is held back until the next tokens decide it, so the caller
never receives any part of a stop sequence, even one split across tokens.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._pending = ""

    def push(self, text: str) -> tuple[str, bool]:
        """Feed new text. Returns (text safe to emit, whether a stop sequence was hit)."""
        if not self._stops:
            return text, False
        self._pending += text
        hits = [i for i in (self._pending.find(s) for s in self._stops) if i >= 0]
        if hits:
            emit = self._pending[: min(hits)]
            self._pending = ""
            return emit, True
        hold = self._held_back_length()
        cut = len(self._pending) - hold
        emit, self._pending = self._pending[:cut], self._pending[cut:]
        return emit, False

    def flush(self) -> str:
        emit, self._pending = self._pending, ""
        return emit

    def _held_back_length(self) -> int:
        """Length of the longest suffix of the pending text that is a proper prefix of some stop sequence."""
        longest = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(self._pending)), longest, -1):
                if self._pending.endswith(stop[:k]):
                    longest = k
                    break
        return longest
