"""PII detection (Presidio analyzer) and transformation (Presidio anonymizer operators), synchronous.

Detection and transformation stay apart, as in Presidio: :meth:`PIIEngine.analyze` returns :class:`Finding` spans;
:meth:`PIIEngine.transform` applies one operator to them. Both are CPU-bound: async callers run them in a thread
(see :mod:`guardserve.guardrails.guards`). The trainer uses the same engine to scrub data.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from guardserve.guardrails.pii.config import PIIConfig
from guardserve.guardrails.pii.names import shape_names
from guardserve.guardrails.pii.nlp import NlpEngineInfo, build_nlp_engine, presidio_offline
from guardserve.guardrails.pii.overlaps import resolve_overlaps
from guardserve.guardrails.pii.phones import drop_non_phones
from guardserve.guardrails.pii.places import keep_personal_places
from guardserve.guardrails.pii.prefilter import skip_impossible_phones
from guardserve.guardrails.pii.recognizers import add_guardserve_recognizers
from guardserve.guardrails.types import Action, Finding

log = logging.getLogger(__name__)

# Recognizers whose PERSON/LOCATION spans get the name-shape rules (a deny list's values are reported as declared).
NER_RECOGNIZER = "SpacyRecognizer"  # Presidio's recognizer of the spaCy model's entities
SHAPED_RECOGNIZERS = frozenset({NER_RECOGNIZER, "CuedNameRecognizer", "CuedLocationRecognizer"})

_shared_nlp: dict[bool, NlpEngineInfo] = {}
_shared_lock = threading.Lock()


def shared_nlp_engine(ner: bool) -> NlpEngineInfo:
    """NLP engines are heavy (the NER model is ~15 MB of weights): build each kind once per process. The NER scope
    is the asking engine's, per text: every PII configuration shares one."""
    with _shared_lock:
        if ner not in _shared_nlp:
            _shared_nlp[ner] = build_nlp_engine(ner)
        return _shared_nlp[ner]


def quiet_presidio() -> None:
    """Presidio logs the text it analyzes at debug level (context words, matched values): never below WARNING."""
    for name in ("presidio-analyzer", "presidio-anonymizer"):
        logging.getLogger(name).setLevel(logging.WARNING)


class PIIEngine:
    def __init__(self, config: PIIConfig | None = None, nlp: NlpEngineInfo | None = None) -> None:
        presidio_offline()
        from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
        from presidio_anonymizer import AnonymizerEngine

        self.config = config or PIIConfig()
        self.nlp = nlp or shared_nlp_engine(self.config.ner)
        self.scope: str = self.config.ner_scope  # the NER scope of its texts (PIIConfig.ner_scope)
        quiet_presidio()
        registry = RecognizerRegistry(supported_languages=["en"])
        presidio_log = logging.getLogger("presidio-analyzer")
        presidio_log.setLevel(logging.ERROR)  # one warning per non-English recognizer skipped: noise
        try:
            registry.load_predefined_recognizers(languages=["en"], nlp_engine=self.nlp.engine)
        finally:
            presidio_log.setLevel(logging.WARNING)
        add_guardserve_recognizers(registry)
        skip_impossible_phones(registry)  # exact: a text with too few digits holds no phone number
        for custom in self.config.custom:
            patterns = [Pattern(p.name, p.regex, p.score) for p in custom.patterns]
            registry.add_recognizer(
                PatternRecognizer(supported_entity=custom.entity, patterns=patterns, context=list(custom.context))
            )
        for entity, values in self.config.deny_list.items():
            registry.add_recognizer(PatternRecognizer(supported_entity=entity, deny_list=list(values)))
        self._analyzer = AnalyzerEngine(nlp_engine=self.nlp.engine, registry=registry, supported_languages=["en"])
        self._anonymizer = AnonymizerEngine()  # type: ignore[no-untyped-call]
        self._entities = list(self.config.all_entities())
        if not self.nlp.ner:
            self._entities = [e for e in self._entities if e not in ("PERSON", "LOCATION")]

    @property
    def ner(self) -> bool:
        return self.nlp.ner

    def analyze(self, text: str) -> list[Finding]:
        """Non-overlapping findings, in text order. Phone-like identifiers and unix times are dropped
        (:mod:`~guardrails.pii.phones`), model and cue names reshaped (:mod:`~guardrails.pii.names`), model places
        nothing ties to a person dropped (:mod:`~guardrails.pii.places`), and overlapping
        findings merged into their union (:func:`~guardserve.guardrails.pii.overlaps.resolve_overlaps`)."""
        if not text.strip():
            return []
        scoped = getattr(self.nlp.engine, "scoped", None)
        with scoped(self.scope) if scoped is not None else contextlib.nullcontext():
            results = self._analyzer.analyze(
                text,
                language="en",
                entities=self._entities,
                score_threshold=self.config.threshold,
                allow_list=list(self.config.allow_list),
            )
        shaped: list[Finding] = []
        kept: list[Finding] = []
        ner_places: set[tuple[int, int]] = set()
        for r in results:
            finding = Finding(r.entity_type, r.start, r.end, float(r.score))
            recognizer = (r.recognition_metadata or {}).get("recognizer_name")
            (shaped if recognizer in SHAPED_RECOGNIZERS else kept).append(finding)
            if recognizer == NER_RECOGNIZER and r.entity_type == "LOCATION":
                ner_places.add((r.start, r.end))
        found = shape_names(text, shaped) + kept
        found = drop_non_phones(text, found, self.config.phone_negative_context)
        found = keep_personal_places(
            text,
            found,
            ner_places,
            scope=self.config.place_scope,
            anchors=self.config.place_anchors,
            context=self.config.place_context,
        )
        return resolve_overlaps(found)

    @contextlib.contextmanager
    def prepared(self, texts: Sequence[str]) -> Iterator[None]:
        """Inside the block, :meth:`analyze` of any of ``texts`` (in this thread) uses NLP results computed for all
        of them in one batch (spaCy ``nlp.pipe``): concurrent requests' texts share one pass through the NER model.
        Results are the same as without the block; only the NLP work is batched."""
        with self.prepared_items([(text, self.scope) for text in texts]):
            yield

    def prepared_items(self, items: Sequence[tuple[str, str]]) -> AbstractContextManager[object]:
        """:meth:`prepared` for (text, NER scope) pairs: the texts of several PII engines (the input guards' and
        the output guards') in one batch through the NLP engine they share."""
        prepare = getattr(self.nlp.engine, "prepared", None)
        return prepare(items) if prepare is not None else contextlib.nullcontext()

    def analyze_batch(self, texts: Sequence[str]) -> list[list[Finding]]:
        """:meth:`analyze` of each text, with the NLP work of all of them in one batch (see :meth:`prepared`)."""
        with self.prepared(texts):
            return [self.analyze(text) for text in texts]

    def transform(
        self,
        text: str,
        findings: Iterable[Finding],
        action: Action,
        *,
        pseudonym: Callable[[str, str], str] | None = None,
        hash_salt: str = "",
    ) -> str:
        """Apply ``action``'s operator to every finding. ``pseudonym(entity_type, value)`` serves PSEUDONYMIZE."""
        findings = list(findings)
        if not findings or not action.transforms:
            return text
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        results = [RecognizerResult(f.entity_type, f.start, f.end, f.score) for f in findings]
        operators = {
            e: _operator(OperatorConfig, action, e, pseudonym, hash_salt) for e in {f.entity_type for f in findings}
        }
        return str(self._anonymizer.anonymize(text, results, operators=operators).text)


def _operator(config: Any, action: Action, entity: str, pseudonym: Callable[[str, str], str] | None, salt: str) -> Any:
    if action is Action.MASK:
        return config("mask", {"masking_char": "*", "chars_to_mask": 10_000, "from_end": False})
    if action is Action.REDACT:
        return config("redact", {})
    if action is Action.PLACEHOLDER:
        return config("replace", {"new_value": f"<{entity}>"})
    if action is Action.HASH:
        return config("hash", {"hash_type": "sha256", "salt": salt})
    if action is Action.PSEUDONYMIZE:
        if pseudonym is None:
            raise ValueError("PSEUDONYMIZE needs a pseudonym function")
        return config("custom", {"lambda": lambda value: pseudonym(entity, value)})
    raise ValueError(f"{action} does not transform text")
