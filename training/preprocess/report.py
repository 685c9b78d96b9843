"""What each preprocessing step did, in counts (never the text it removed or changed)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepReport:
    step: str
    input: int = 0
    output: int = 0
    modified: int = 0
    seconds: float = 0.0
    skipped_sources: list[str] = field(default_factory=list)
    removed_by_source: Counter[str] = field(default_factory=Counter)
    modified_by_source: Counter[str] = field(default_factory=Counter)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def removed(self) -> int:
        return self.input - self.output

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "input": self.input,
            "output": self.output,
            "removed": self.removed,
            "modified": self.modified,
            "seconds": round(self.seconds, 2),
            "skipped_sources": self.skipped_sources,
            "removed_by_source": dict(sorted(self.removed_by_source.items())),
            "modified_by_source": dict(sorted(self.modified_by_source.items())),
            "details": self.details,
        }
