"""GuardServe guardrails: a library (no web framework) used by the gateway and by the trainer.

Public API::

    from guardserve.guardrails import PIIEngine, PIIConfig, Pseudonymizer, Action, Finding, Decision, Stage
    from guardserve.guardrails import ToxicityClassifier, ProfanityClassifier, build_classifier

The synchronous engines here are CPU-bound; async code calls them through :mod:`guardserve.guardrails.guards`.
"""

from guardserve.guardrails.pii.config import CustomRecognizer, PatternSpec, PIIConfig
from guardserve.guardrails.pii.engine import PIIEngine
from guardserve.guardrails.pii.pseudonyms import Pseudonymizer, StreamRestorer
from guardserve.guardrails.toxicity import (
    ProfanityClassifier,
    ToxicityClassifier,
    TransformersClassifier,
    build_classifier,
)
from guardserve.guardrails.types import Action, Decision, Finding, Stage

__all__ = [
    "Action",
    "CustomRecognizer",
    "Decision",
    "Finding",
    "PIIConfig",
    "PIIEngine",
    "PatternSpec",
    "ProfanityClassifier",
    "Pseudonymizer",
    "Stage",
    "StreamRestorer",
    "ToxicityClassifier",
    "TransformersClassifier",
    "build_classifier",
]
