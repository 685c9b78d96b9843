"""Prompt-injection heuristics: instruction overrides, role-play jailbreaks, system-prompt extraction, fake role tags.

Rules are data (:class:`InjectionRule`: a name, a regex, a weight). A text's score combines the weights of the rules
it matches as independent evidence, ``1 - prod(1 - w)``, so two medium signals outweigh one. Policies add their own
rules. This catches the common, copy-pasted attacks cheaply; it is not a defence against a determined adversary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from guardserve.guardrails.validation import Regex


class InjectionRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,48}$")
    pattern: Regex
    weight: float = Field(gt=0.0, le=1.0)


_PRIOR = r"(?:all\s+|any\s+|the\s+|your\s+|my\s+)*(?:previous|prior|above|earlier|preceding|original|initial|system)"
_RULES_TEXT = r"(?:instructions?|prompts?|rules|directions|guidelines|messages?|context|constraints)"

DEFAULT_RULES: tuple[InjectionRule, ...] = (
    InjectionRule(
        name="override_instructions",
        pattern=rf"\b(?:ignore|disregard|forget|skip|override|bypass)\s+(?:about\s+)?{_PRIOR}\s+{_RULES_TEXT}",
        weight=0.9,
    ),
    InjectionRule(
        name="forget_everything",
        pattern=r"\b(?:forget|ignore|disregard)\s+(?:everything|all(?:\s+of\s+that)?)\s+(?:you\s+(?:were|have\s+been)\s+told|above|before)",
        weight=0.85,
    ),
    InjectionRule(
        name="new_instructions", pattern=r"\b(?:new|updated|real)\s+(?:system\s+)?instructions?\s*:", weight=0.6
    ),
    InjectionRule(
        name="jailbreak_persona",
        pattern=r"\b(?:you\s+are\s+(?:now\s+)?(?:DAN|jailbroken|unfiltered|unrestricted|an?\s+(?:unfiltered|unrestricted|uncensored)\b)|do\s+anything\s+now|developer\s+mode\s+(?:enabled|on)|jailbreak(?:ing)?\b)",
        weight=0.9,
    ),
    InjectionRule(
        name="roleplay_without_rules",
        pattern=r"\b(?:pretend|act|behave|roleplay|role-play)\b.{0,60}\b(?:no|without|free\s+of|ignor\w*)\s+(?:any\s+)?(?:rules|restrictions|limits|filters|guidelines|censorship|ethics)",
        weight=0.8,
    ),
    InjectionRule(
        name="system_prompt_extraction",
        pattern=r"\b(?:reveal|show|print|repeat|output|display|leak|tell\s+me|give\s+me|what\s+(?:is|are|was|were))\s+(?:me\s+)?(?:your|the)\s+(?:full\s+|exact\s+|entire\s+)?(?:system|initial|hidden|original|secret|developer)\s+(?:prompt|instructions?|message|rules)",
        weight=0.85,
    ),
    InjectionRule(
        name="repeat_above",
        pattern=r"\brepeat\s+(?:all\s+)?(?:the\s+)?(?:words|text|everything)\s+(?:above|before\s+this)",
        weight=0.7,
    ),
    InjectionRule(
        name="fake_role_tag",
        pattern=r"(?:<\|(?:system|im_start|assistant|user|end)\|>|\[/?INST\]|^\s*#{2,}\s*system\b|<<SYS>>)",
        weight=0.7,
    ),
)


@dataclass(frozen=True)
class InjectionMatch:
    rule: str
    start: int
    end: int
    weight: float


class InjectionDetector:
    def __init__(self, rules: Iterable[InjectionRule] = DEFAULT_RULES) -> None:
        self._rules = [(r, re.compile(r.pattern, re.IGNORECASE | re.MULTILINE | re.DOTALL)) for r in rules]

    def matches(self, text: str) -> list[InjectionMatch]:
        found = []
        for rule, regex in self._rules:
            m = regex.search(text)
            if m is not None:
                found.append(InjectionMatch(rule.name, m.start(), m.end(), rule.weight))
        return found

    @staticmethod
    def score(matches: Iterable[InjectionMatch]) -> float:
        miss = 1.0
        for m in matches:
            miss *= 1.0 - m.weight
        return 1.0 - miss
