"""Which of smol_safety's frames and intents a generated prompt was built from (tests of its data generators)."""

from __future__ import annotations

from guardserve.training.synthetic.smol_safety import FRAMES


def framed_as(prompt: str, intents: tuple[str, ...]) -> tuple[str, str] | None:
    """(frame, intent) whose framing (as written, or with its first letter capitalised) is ``prompt``, else None."""
    for frame in FRAMES:
        for intent in intents:
            text = frame.format(i=intent)
            if prompt in (text, text[0].upper() + text[1:]):
                return frame, intent
    return None
