"""PII detection settings as data: which entities, how sure, what is never PII, what always is, extra regexes."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from guardserve.guardrails.pii.name_scope import DEFAULT_NER_SCOPE, NerScope
from guardserve.guardrails.pii.phones import NEGATIVE_CONTEXT
from guardserve.guardrails.pii.places import DEFAULT_PLACE_SCOPE, PERSONAL_CONTEXT, PLACE_ANCHORS, PlaceScope
from guardserve.guardrails.validation import Regex

DEFAULT_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
    "CRYPTO",
    "PERSON",
    "LOCATION",
    "STREET_ADDRESS",
)

# Cloud and tech acronyms that pattern and NER recognizers like to mistake for names or licence numbers.
# Operating systems, languages and tools the NER model reads as people or places ("on Linux", "like Docker",
# "in Python"): product names, never personal data. Exact values (Presidio's allow list), as written in docs.
SOFTWARE_NAMES = (
    "Linux",
    "Ubuntu",
    "Debian",
    "Fedora",
    "Windows",
    "macOS",
    "Android",
    "iOS",
    "Python",
    "Java",
    "JavaScript",
    "TypeScript",
    "Perl",
    "Rust",
    "Kotlin",
    "Bash",
    "bash",
    "Zsh",
    "PowerShell",
    "Docker",
    "Kubernetes",
    "Git",
    "GitHub",
    "GitLab",
    "Nginx",
    "Apache",
    "PostgreSQL",
    "Postgres",
    "MySQL",
    "SQLite",
    "Redis",
    "Excel",
    "Chrome",
    "Firefox",
    "Safari",
)
DEFAULT_ALLOW_LIST = (
    *("S3", "EKS", "GKE", "AKS", "EC2", "IAM", "VPC", "K8s", "GPU", "CPU", "API", "SQL"),
    *SOFTWARE_NAMES,
)

_ENTITY = r"^[A-Z][A-Z0-9_]{1,48}$"


class PatternSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    regex: Regex
    score: float = Field(0.8, gt=0.0, le=1.0)


class CustomRecognizer(BaseModel):
    """A regex recognizer declared in a policy, e.g. employee ids: ``{entity: EMPLOYEE_ID, patterns: [...]}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str = Field(pattern=_ENTITY)
    patterns: tuple[PatternSpec, ...] = Field(min_length=1)
    context: tuple[str, ...] = ()  # words near a match that raise its score


class PIIConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: tuple[str, ...] = DEFAULT_ENTITIES
    threshold: float = Field(0.35, ge=0.0, le=1.0)
    allow_list: tuple[str, ...] = DEFAULT_ALLOW_LIST  # exact values never reported
    deny_list: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # entity -> values always reported
    custom: tuple[CustomRecognizer, ...] = ()
    ner: bool = True  # use the spaCy NER model for PERSON/LOCATION when it is installed
    # where the NER model runs (guardrails.pii.name_scope): only the sentences that may hold a name, the same with the
    # casing of text a model wrote always trusted (cased_text), or whole texts
    ner_scope: NerScope = DEFAULT_NER_SCOPE
    # words before a bare phone-like number that make it an identifier (SKU, order...), see guardrails.pii.phones
    phone_negative_context: tuple[str, ...] = NEGATIVE_CONTEXT
    # a place the NER model found is kept only where the text ties it to a person (guardrails.pii.places): an
    # identifying finding of these types in the text, a personal cue word near it, or a form label; "all": every one
    place_scope: PlaceScope = DEFAULT_PLACE_SCOPE
    place_anchors: tuple[str, ...] = PLACE_ANCHORS
    place_context: tuple[str, ...] = PERSONAL_CONTEXT

    @field_validator("entities")
    @classmethod
    def _entity_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [e for e in value if not re.match(_ENTITY, e)]
        if bad:
            raise ValueError(f"entity names must be UPPER_SNAKE_CASE: {bad}")
        return value

    def all_entities(self) -> tuple[str, ...]:
        extra = [c.entity for c in self.custom] + list(self.deny_list)
        return tuple(dict.fromkeys([*self.entities, *extra]))
