from __future__ import annotations

import dataclasses

import pytest

from guardserve.guardrails import Action, CustomRecognizer, Finding, PatternSpec, PIIConfig, PIIEngine, Pseudonymizer

TEXT = (
    "Hi, I'm John Smith from Berlin. Mail me at john.smith@example.com or call 212-555-0199. "
    "My card is 4111 1111 1111 1111 and SSN 536-22-1234. Server 10.0.0.1, deploy on EKS and S3."
)
VALUES = {
    "PERSON": "John Smith",
    "LOCATION": "Berlin",
    "EMAIL_ADDRESS": "john.smith@example.com",
    "PHONE_NUMBER": "212-555-0199",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "US_SSN": "536-22-1234",
    "IP_ADDRESS": "10.0.0.1",
}


def found(engine: PIIEngine, text: str) -> dict[str, str]:
    return {f.entity_type: text[f.start : f.end] for f in engine.analyze(text)}


def test_finds_patterns_and_names(pii: PIIEngine) -> None:
    assert pii.ner
    assert found(pii, TEXT) == VALUES


def test_allow_list_keeps_tech_acronyms(pii: PIIEngine) -> None:
    assert all(TEXT[f.start : f.end] not in ("EKS", "S3") for f in pii.analyze(TEXT))


def test_pattern_only_engine_has_no_names(pii_patterns: PIIEngine) -> None:
    assert not pii_patterns.ner
    result = found(pii_patterns, TEXT)
    assert "PERSON" not in result and "LOCATION" not in result
    assert result["CREDIT_CARD"] == VALUES["CREDIT_CARD"] and result["EMAIL_ADDRESS"] == VALUES["EMAIL_ADDRESS"]


@pytest.mark.parametrize("action", [Action.MASK, Action.REDACT, Action.PLACEHOLDER, Action.HASH, Action.PSEUDONYMIZE])
def test_every_operator_removes_every_value(pii: PIIEngine, action: Action) -> None:
    out = pii.transform(TEXT, pii.analyze(TEXT), action, pseudonym=Pseudonymizer().placeholder, hash_salt="s" * 16)
    for value in VALUES.values():
        assert value not in out
    assert "EKS and S3" in out


def test_operator_shapes(pii: PIIEngine) -> None:
    text = "write to ann@example.org please"
    findings = pii.analyze(text)
    assert pii.transform(text, findings, Action.PLACEHOLDER) == "write to <EMAIL_ADDRESS> please"
    assert pii.transform(text, findings, Action.MASK) == "write to " + "*" * len("ann@example.org") + " please"
    assert pii.transform(text, findings, Action.REDACT) == "write to  please"
    hashed_a = pii.transform(text, findings, Action.HASH, hash_salt="k" * 16)
    hashed_b = pii.transform(text, findings, Action.HASH, hash_salt="k" * 16)
    assert hashed_a == hashed_b and "ann@" not in hashed_a


def test_custom_regex_and_deny_list() -> None:
    config = PIIConfig(
        ner=False,
        entities=("EMAIL_ADDRESS",),
        custom=(CustomRecognizer(entity="EMPLOYEE_ID", patterns=(PatternSpec(regex=r"\bEMP-\d{6}\b", score=0.9),)),),
        deny_list={"PROJECT_CODENAME": ("Bluebird",)},
    )
    engine = PIIEngine(config)
    text = "EMP-123456 works on Bluebird"
    assert found(engine, text) == {"EMPLOYEE_ID": "EMP-123456", "PROJECT_CODENAME": "Bluebird"}


def test_bad_custom_regex_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid regular expression"):
        PatternSpec(regex="(unclosed")


def test_findings_never_carry_the_value() -> None:
    assert [f.name for f in dataclasses.fields(Finding)] == ["entity_type", "start", "end", "score"]
