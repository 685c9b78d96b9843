"""Every shipped policy over any text (hypothesis): random Unicode from every category (control characters, lone
combining marks, right-to-left text, emoji, private-use and unassigned code points, NULs), e-mails planted in it, and
huge texts. A guard may decide anything, but screening never raises, always returns one valid string per input,
never hands back a planted address under a masking policy, and a pseudonym restores to what was there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guardserve.guardrails import Pseudonymizer
from guardserve.guardrails.runtime import Guardrails
from guardserve.models.unicode import LONE_SURROGATE

PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# any code point but lone surrogates (the gateway replaces those with U+FFFD before a guard sees them)
ANY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=400)
EMAIL = "dana.kovacs@example.com"


@pytest.fixture(scope="module")
def guardrails() -> Iterator[Guardrails]:
    g = Guardrails.from_file()
    yield g
    g.close()


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


@PROPERTY
@given(texts=st.lists(ANY_TEXT, min_size=1, max_size=4))
def test_input_screening_takes_any_text(guardrails: Guardrails, texts: list[str]) -> None:
    for name in ("default", "strict", "observe"):
        outcome = run(guardrails.policy(name).screen_input([("user", t) for t in texts], Pseudonymizer()))
        assert len(outcome.texts) == len(texts)
        assert all(isinstance(t, str) and not LONE_SURROGATE.search(t) for t in outcome.texts)
        assert all(d.error is None for d in outcome.decisions), [d.error for d in outcome.decisions]


@PROPERTY
@given(before=ANY_TEXT, after=ANY_TEXT)
def test_a_planted_address_never_comes_back_from_a_masking_policy(
    guardrails: Guardrails, before: str, after: str
) -> None:
    text = f"{before} {EMAIL} {after}"
    outcome = run(guardrails.policy("default").screen_output(text, None))
    assert outcome.blocked is not None or EMAIL not in outcome.texts[0]
    assert all(d.error is None for d in outcome.decisions)


@PROPERTY
@given(before=ANY_TEXT, after=ANY_TEXT)
def test_a_pseudonym_restores_to_the_original(guardrails: Guardrails, before: str, after: str) -> None:
    pseudonyms = Pseudonymizer()
    outcome = run(guardrails.policy("default").screen_input([("system", f"{before} {EMAIL} {after}")], pseudonyms))
    screened = outcome.texts[0]
    assert EMAIL not in screened
    assert EMAIL in pseudonyms.restore(screened)


def test_huge_texts_are_screened_to_the_end(guardrails: Guardrails) -> None:
    """200,000 characters of mixed text with addresses spread through it: every one is masked, none raises."""
    chunk = "Ünïcödé ✓ العربية 中文 \x00\x07 tab\there — write to {mail} soon.\n"
    text = "".join(chunk.format(mail=f"user{i}@example.org") for i in range(3000))[:200_000]
    outcome = run(guardrails.policy("default").screen_output(text, None))
    assert outcome.blocked is None and all(d.error is None for d in outcome.decisions)
    assert "@example.org" not in outcome.texts[0]
