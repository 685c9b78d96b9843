"""Length and quality filters. Each rule has a name; the report counts removals per rule."""

from __future__ import annotations

from guardserve.training.recipe import FilterConfig
from guardserve.training.records import Record


def reject_reason(record: Record, config: FilterConfig) -> str | None:
    contents = record.contents()
    if any(not c.strip() for c in contents):
        return "empty_turn"
    flat = "\n".join(contents)
    if len(flat) < config.min_chars:
        return "too_short"
    if len(flat) > config.max_chars:
        return "too_long"
    if len(flat.split()) < config.min_words:
        return "too_few_words"
    visible = [ch for ch in flat if not ch.isspace()]
    if visible:
        symbols = sum(1 for ch in visible if not ch.isalnum())
        if symbols / len(visible) > config.max_symbol_ratio:
            return "symbol_ratio"
    lines = [line.strip() for line in flat.splitlines() if line.strip()]
    if len(lines) >= 4 and 1 - len(set(lines)) / len(lines) > config.max_repeat_line_ratio:
        return "repeated_lines"
    if record.messages is not None and record.messages[-1]["role"] != "assistant":
        return "no_final_assistant_turn"
    return None
