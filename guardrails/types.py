"""Vocabulary shared by every guard: actions, findings, decisions.

A :class:`Finding` says *what* was found and *where*, never the value itself, so decisions can be logged, returned
to the caller and counted in metrics without carrying the PII they describe.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class Stage(StrEnum):
    INPUT = "input"
    OUTPUT = "output"


class Action(StrEnum):
    ALLOW = "allow"  # nothing found, or found and allowed
    FLAG = "flag"  # found; reported, text unchanged
    MASK = "mask"  # characters replaced (e.g. ****@****.com), PII types keep their shape
    REDACT = "redact"  # removed
    PLACEHOLDER = "placeholder"  # replaced with its type, e.g. <EMAIL_ADDRESS>
    HASH = "hash"  # replaced with a keyed hash (same value -> same hash within a deployment)
    PSEUDONYMIZE = "pseudonymize"  # replaced with <PERSON_1>; the caller gets the original back in the answer
    BLOCK = "block"  # the request or answer is refused

    @property
    def transforms(self) -> bool:
        return self in (Action.MASK, Action.REDACT, Action.PLACEHOLDER, Action.HASH, Action.PSEUDONYMIZE)

    @property
    def strength(self) -> int:
        """Order used to check that a policy is at least as strict as another."""
        return _STRENGTH[self]


_STRENGTH = {
    Action.ALLOW: 0,
    Action.FLAG: 1,
    Action.PSEUDONYMIZE: 2,
    Action.MASK: 3,
    Action.REDACT: 3,
    Action.PLACEHOLDER: 3,
    Action.HASH: 3,
    Action.BLOCK: 4,
}


@dataclass(frozen=True, slots=True)
class Finding:
    """Something a guard found: its type, where it is, how sure the guard is. Never the matched value."""

    entity_type: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Decision:
    """What one guard did to one text (or to all texts of one stage)."""

    guard: str
    stage: Stage
    action: Action
    findings: tuple[Finding, ...] = ()
    latency_ms: float = 0.0
    error: str | None = None  # set when the guard failed (and the policy decided what that means)
    score: float | None = None  # classifier score, when the guard has one
    # where the findings are: (index of the screened text, start, end, entity type); offsets, never values
    spans: tuple[tuple[int, int, int, str], ...] = ()

    @property
    def acted(self) -> bool:
        return self.action is not Action.ALLOW

    def entity_counts(self) -> dict[str, int]:
        return dict(Counter(f.entity_type for f in self.findings))


@dataclass
class Screened:
    """The outcome of screening some text with one guard."""

    text: str
    decision: Decision
    extra: dict[str, object] = field(default_factory=dict)
