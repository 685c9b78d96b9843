"""GuardServe's recognizers on top of Presidio's predefined ones.

* :data:`RECOGNIZERS_YAML`: street addresses (US/UK/DE/FR layouts, the whole address one span) and names after or
  before a cue ("Dear X", "holder: X", "X and I"), in Presidio's YAML recognizer format, with context words.
* :func:`credit_card_recognizer`: Presidio's credit-card recognizer (Luhn check kept) with Mastercard's 2-series
  (BIN 2221-2720) added to its pattern; it replaces the predefined one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

RECOGNIZERS_YAML = Path(__file__).with_name("recognizers.yaml")

# Presidio's "All Credit Cards (weak)" pattern with the 2-series Mastercard prefixes 2221-2720 added.
CREDIT_CARD_REGEX = (
    r"\b(?!1\d{12}(?!\d))((4\d{3})|(5[0-5]\d{2})|(6\d{3})|(1\d{3})|(3\d{3})"
    r"|(222[1-9]|22[3-9]\d|2[3-6]\d{2}|27[01]\d|2720))"
    r"[- ]?(\d{3,4})[- ]?(\d{3,4})[- ]?(\d{3,5})\b"
)


def credit_card_recognizer() -> Any:
    from presidio_analyzer import Pattern
    from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

    return CreditCardRecognizer(patterns=[Pattern("All Credit Cards (weak)", CREDIT_CARD_REGEX, 0.3)])


def add_guardserve_recognizers(registry: Any, yaml_path: Path = RECOGNIZERS_YAML) -> None:
    """Swap in :func:`credit_card_recognizer` and load the YAML recognizers into ``registry``."""
    from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

    registry.recognizers = [r for r in registry.recognizers if not isinstance(r, CreditCardRecognizer)]
    registry.add_recognizer(credit_card_recognizer())
    registry.add_recognizers_from_yaml(yaml_path)
