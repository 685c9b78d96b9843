"""Incremental detokenization that never splits a multi-byte character.

Decoding token by token goes wrong two ways: a byte-level token may hold half of a UTF-8 character (decoding it
alone gives U+FFFD), and some tokenizers (SentencePiece) decide spacing from the token before. The fix, as in TGI
and vLLM: keep two offsets into the token list and decode a short window ending at the newest token; emit only
the new suffix, and only once it does not end in a replacement character (an incomplete character). At the end,
:meth:`flush` emits whatever is left, replacement characters included, so the concatenated output always equals
decoding all tokens at once.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


class IncrementalDetokenizer:
    def __init__(self, tokenizer: Any, prompt_ids: list[int] | None = None, context_tokens: int = 5) -> None:
        """``tokenizer`` is a ``tokenizers.Tokenizer``. A few prompt tokens seed the window so spacing is right."""
        self._tokenizer = tokenizer
        seed = list(prompt_ids[-context_tokens:]) if prompt_ids else []
        self._ids: list[int] = seed
        self._prefix_offset = 0
        self._read_offset = len(seed)

    def _decode(self, ids: list[int]) -> str:
        return str(self._tokenizer.decode(ids, skip_special_tokens=True))

    def push(self, token_id: int) -> str:
        """Add one token; return the text that is now certain (may be empty)."""
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset :])
        if len(new_text) > len(prefix_text) and not new_text.endswith(REPLACEMENT):
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            return new_text[len(prefix_text) :]
        return ""

    def flush(self) -> str:
        """Return all text not yet emitted, even if it ends in an incomplete character."""
        prefix_text = self._decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._decode(self._ids[self._prefix_offset :])
        self._prefix_offset = self._read_offset = len(self._ids)
        return new_text[len(prefix_text) :]
