from __future__ import annotations

import pytest

from guardserve.guardrails import PIIConfig, PIIEngine, ProfanityClassifier


@pytest.fixture(scope="session")
def pii() -> PIIEngine:
    """Presidio with the spaCy NER model (loaded once per test session)."""
    return PIIEngine(PIIConfig())


@pytest.fixture(scope="session")
def pii_patterns() -> PIIEngine:
    """Pattern recognizers only (blank tokenizer): no PERSON/LOCATION."""
    return PIIEngine(PIIConfig(ner=False))


@pytest.fixture(scope="session")
def toxicity() -> ProfanityClassifier:
    return ProfanityClassifier()
