"""GuardServe guardrails: a library (no web framework) used by the gateway and by the trainer.

Public API::

    from guardrails import PIIEngine, PIIConfig, Pseudonymizer, Action, Finding, Decision, Stage
    from guardrails import ToxicityClassifier, ProfanityClassifier, build_classifier

The synchronous engines here are CPU-bound; async code calls them through :mod:`guardrails.guards`.
"""

from guardrails.pii.config import CustomRecognizer, PatternSpec, PIIConfig
from guardrails.pii.engine import PIIEngine
from guardrails.pii.pseudonyms import Pseudonymizer, StreamRestorer
from guardrails.toxicity import ProfanityClassifier, ToxicityClassifier, TransformersClassifier, build_classifier
from guardrails.types import Action, Decision, Finding, Stage

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
