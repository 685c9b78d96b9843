"""Skip recognizers that provably cannot match a text, before they scan it.

Presidio's phone recognizer runs python-phonenumbers' matcher once per supported region (eight by default) over the
whole text: ~70 % of Presidio's time per text besides NLP, whatever the text holds. A phone number the matcher
accepts (leniency VALID) has a national number of at least the shortest possible length any region defines (4
digits), and every digit of it is a digit of the text (the matcher's candidates are runs of digits and punctuation;
letters never become digits there). So a text with fewer decimal digits than that has no phone number, and the
recognizer is not run on it. Results never change: the skip is exact, not a heuristic.
"""

from __future__ import annotations

import functools
from typing import Any

_skipping = [True]  # switched off only by the benchmark, to measure what the skip saves


def set_skipping(enabled: bool) -> None:
    _skipping[0] = enabled


@functools.cache
def min_phone_digits() -> int:
    """The fewest digits of any valid phone number phonenumbers knows (1 if its metadata cannot be read)."""
    try:
        import phonenumbers
        from phonenumbers import PhoneMetadata

        lengths = [
            length
            for region in phonenumbers.SUPPORTED_REGIONS
            if (meta := PhoneMetadata.metadata_for_region(region)) is not None and meta.general_desc is not None
            for length in meta.general_desc.possible_length
        ]
        lengths += [
            length
            for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS
            if (meta := PhoneMetadata.metadata_for_nongeo_region(code)) is not None and meta.general_desc is not None
            for length in meta.general_desc.possible_length
        ]
        return max(1, min(lengths)) if lengths else 1
    except Exception:  # an unexpected phonenumbers version: never skip
        return 1


def skip_impossible_phones(registry: Any) -> int:
    """Wrap the analyze of every phone recognizer in ``registry`` so it returns nothing, without scanning, for a
    text with too few digits to hold a phone number. Returns how many recognizers were wrapped."""
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    least = min_phone_digits()
    wrapped = 0
    for recognizer in registry.recognizers:
        if isinstance(recognizer, PhoneRecognizer) and least > 1:
            analyze = recognizer.analyze

            def guarded(text: str, entities: Any, nlp_artifacts: Any = None, _analyze: Any = analyze) -> Any:
                if _skipping[0] and sum(ch.isdecimal() for ch in text) < least:
                    return []
                return _analyze(text, entities, nlp_artifacts)

            recognizer.analyze = guarded  # type: ignore[method-assign]
            wrapped += 1
    return wrapped
