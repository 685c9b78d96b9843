"""Policies turned into running guards, sharing the heavy parts.

:class:`Guardrails` loads the policy file once, builds each policy's guards, and shares what is expensive: one
Presidio engine per distinct PII configuration (they all share one spaCy pipeline), one classifier and micro-batcher
per classifier kind, thread pools for guard work: one for whole texts (with a bulk lane for long ones) and one of
its own for stream windows, so a stream's windows never queue behind input screenings (their ``window_timeout_s``
counts queued time). :class:`Policy` is what a request uses: screen the input, screen
a whole answer, or open a :class:`~guardserve.guardrails.streaming.StreamScreen` for a streamed one.

Guard work is bounded: input screenings and moderation calls pass one :class:`~guardrails.gate.ScreeningGate` (a few
at once, a bounded queue, :class:`~guardrails.gate.GuardrailsBusyError` beyond it), and every whole-text screening
has a ``deadline`` after which its guards count as failed (the policy's ``on_error`` decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from guardserve.guardrails.batching import MicroBatcher, PreparedBatcher
from guardserve.guardrails.cache import ScreeningCache
from guardserve.guardrails.gate import ScreeningGate
from guardserve.guardrails.guards import (
    CategoryScorer,
    Guard,
    HarmfulRequestGuard,
    InjectionGuard,
    PIIGuard,
    Scorer,
    ToxicityGuard,
)
from guardserve.guardrails.injection import DEFAULT_RULES, InjectionDetector
from guardserve.guardrails.pii.config import PIIConfig
from guardserve.guardrails.pii.engine import PIIEngine
from guardserve.guardrails.pii.pseudonyms import Pseudonymizer
from guardserve.guardrails.policy import (
    DEFAULT_POLICY_FILE,
    HarmfulRequestSpec,
    InjectionSpec,
    PIIGuardSpec,
    PolicyFile,
    PolicySpec,
    StageSpec,
    ToxicitySpec,
    load_policies,
)
from guardserve.guardrails.screening import SpanFactory, StageOutcome, Target, screen
from guardserve.guardrails.semantic import DEFAULT_ARTIFACT, RecentRows, SemanticClassifier
from guardserve.guardrails.streaming import StreamScreen
from guardserve.guardrails.toxicity import ToxicityClassifier, build_classifier
from guardserve.guardrails.types import Action, Decision, Stage

log = logging.getLogger(__name__)

USER_ONLY = ("pii", "toxicity", "harmful_request", "prompt_injection")  # guards that look at the user's own messages
OTHER_ROLES = ("pii",)  # system/assistant messages: PII only (operators write system prompts)
CACHED_ROLES = ("system", "developer")  # resent unchanged with every request: their screening is cached


class PolicyNotAllowedError(ValueError):
    """A request asked for a policy it may not use (unknown, or weaker than its own)."""


class UnknownPolicyError(LookupError):
    """An API key names a policy the policy file does not define (removed since): a server-side fault."""


@dataclass
class Policy:
    name: str
    spec: PolicySpec
    input_guards: list[Guard]
    output_guards: list[Guard]
    executor: Executor | None = None  # where stream windows are screened (not the whole-text pool: never behind it)
    gate: ScreeningGate | None = None  # bounds concurrent input screenings (None: unbounded)
    deadline: float | None = None  # seconds a whole-text screening may take (None: no limit)
    cache: ScreeningCache | None = None  # inspections of system prompts (None: screened every time)

    @property
    def fail_closed(self) -> bool:
        return self.spec.on_error == "fail_closed"

    @property
    def pseudonymizes(self) -> bool:
        return self.spec.input.pii is not None and self.spec.input.pii.action is Action.PSEUDONYMIZE

    async def screen_input(
        self,
        messages: Sequence[tuple[str, str]],
        pseudonyms: Pseudonymizer | None,
        span: SpanFactory | None = None,
        only: str | None = None,
    ) -> StageOutcome:
        """``messages``: (role, text) pairs. Injection and toxicity look at user messages; PII at all of them.
        ``only``: run just the input guard of that name (e.g. ``pii`` for texts to embed).
        Raises :class:`GuardrailsBusyError` when the guard stage's queue is full."""
        guards = self.input_guards if only is None else [g for g in self.input_guards if g.name == only]
        targets = [
            Target(text, USER_ONLY if role == "user" else OTHER_ROLES, cached=role in CACHED_ROLES)
            for role, text in messages
        ]
        async with self.gate.slot(self.deadline) if self.gate is not None else contextlib.nullcontext():
            return await screen(
                guards,
                targets,
                Stage.INPUT,
                pseudonyms=pseudonyms,
                fail_closed=self.fail_closed,
                span=span,
                deadline=self.deadline,
                cache=self.cache,
            )

    async def screen_output(
        self, text: str, pseudonyms: Pseudonymizer | None, span: SpanFactory | None = None
    ) -> StageOutcome:
        outcome = await screen(
            self.output_guards,
            [Target(text)],
            Stage.OUTPUT,
            pseudonyms=pseudonyms,
            fail_closed=self.fail_closed,
            span=span,
            deadline=self.deadline,
        )
        if pseudonyms is not None and outcome.blocked is None:
            outcome.texts = [pseudonyms.restore(t) for t in outcome.texts]
        return outcome

    def stream(self, pseudonyms: Pseudonymizer | None) -> StreamScreen:
        return StreamScreen(
            self.output_guards,
            self.spec.stream,
            pseudonyms=pseudonyms,
            fail_closed=self.fail_closed,
            executor=self.executor,
        )


@dataclass(frozen=True)
class ModerationResult:
    flagged: bool
    categories: dict[str, bool]
    scores: dict[str, float]
    decisions: tuple[Decision, ...] = ()  # one per guard (for metrics: actions and latencies, never the text)


class Guardrails:
    def __init__(
        self,
        policies: PolicyFile,
        *,
        default_policy: str | None = None,
        workers: int = 4,
        batch_wait: float = 0.002,
        hash_salt: str | None = None,
        deadline: float | None = None,
        screenings: int = 8,
        max_queued: int = 64,
        batch_pii: bool = True,
        cache_entries: int = 1024,
        batch_parallel: int = 1,
    ) -> None:
        """``batch_pii``: concurrent requests' short PII screenings share one NER pass
        (:class:`~guardrails.batching.PreparedBatcher`); ``batch_parallel`` such passes run at once (1: while one
        runs, the next gathers every job that arrives meanwhile; two at once halved the batch size and, since the
        NER model holds the GIL for most of its work, cost ~25 % more CPU per request for little overlap).
        ``cache_entries``: system-prompt inspections kept
        (:class:`~guardserve.guardrails.cache.ScreeningCache`; 0: none)."""
        self.file = policies
        self.default_name = default_policy or policies.default
        if self.default_name not in policies.policies:
            raise ValueError(f"default policy {self.default_name!r} is not defined")
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="guard")
        self._bulk = ThreadPoolExecutor(max_workers=max(1, workers // 2), thread_name_prefix="guard-bulk")
        self._stream = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="guard-stream")
        self._batch_wait = batch_wait
        self.deadline = deadline
        self.gate = ScreeningGate(screenings, max_queued)
        self._salt = hash_salt or secrets.token_hex(16)
        self._pii: dict[str, PIIEngine] = {}
        self._pii_batchers: dict[str, PreparedBatcher] = {}
        self._batch_pii = batch_pii
        self._batch_parallel = max(1, batch_parallel)
        self.cache = ScreeningCache(cache_entries) if cache_entries > 0 else None
        self._classifiers: dict[tuple[str, str | None], tuple[ToxicityClassifier, MicroBatcher[float]]] = {}
        self._semantic: dict[str | None, tuple[SemanticClassifier, MicroBatcher[dict[str, float]]]] = {}
        self.policies = {name: self._build(name, spec) for name, spec in policies.policies.items()}
        self._moderation = self._build_moderation(self.policies[self.default_name].spec)

    @classmethod
    def from_file(cls, path: str | Path = DEFAULT_POLICY_FILE, **kwargs: object) -> Guardrails:
        return cls(load_policies(path), **kwargs)  # type: ignore[arg-type]

    # --- use ------------------------------------------------------------------------------------------------

    def policy(self, name: str | None = None) -> Policy:
        return self.policies[name or self.default_name]

    def resolve(self, assigned: str | None, requested: str | None) -> Policy:
        """The policy for a request: its key's (or the default), or a requested one that is at least as strict."""
        if assigned is not None and assigned not in self.policies:
            raise UnknownPolicyError(f"the guardrails policy {assigned!r} named by this API key is not configured")
        base = self.policy(assigned)
        if requested is None or requested == base.name:
            return base
        wanted = self.policies.get(requested)
        if wanted is None:
            raise PolicyNotAllowedError(f"unknown guardrails policy {requested!r}")
        if not wanted.spec.at_least_as_strict_as(base.spec):
            raise PolicyNotAllowedError(
                f"policy {requested!r} is not at least as strict as {base.name!r}: a request cannot weaken its policy"
            )
        return wanted

    async def moderate(self, texts: Sequence[str]) -> list[ModerationResult]:
        """Score every category for every text (all texts and guards concurrently; the classifier batches them).
        One pass of the gate per call. Raises :class:`GuardrailsBusyError` (queue full) or RuntimeError (a guard
        failed or ran past the deadline)."""
        async with self.gate.slot(self.deadline):
            return list(await asyncio.gather(*(self._moderate_one(t) for t in texts)))

    async def _moderate_one(self, text: str) -> ModerationResult:
        outcome = await screen(
            list(self._moderation),
            [Target(text)],
            Stage.INPUT,
            pseudonyms=None,
            fail_closed=True,
            deadline=self.deadline,
        )
        if any(d.error for d in outcome.decisions):
            raise RuntimeError("a guard failed during moderation")
        scores = {d.guard: round(d.score or 0.0, 6) for d in outcome.decisions}
        flags = {d.guard: d.action is not Action.ALLOW for d in outcome.decisions}
        return ModerationResult(any(flags.values()), flags, scores, tuple(outcome.decisions))

    def info(self) -> dict[str, object]:
        engine = next(iter(self._pii.values()), None)
        return {
            "policies": sorted(self.policies),
            "default_policy": self.default_name,
            "ner": engine.ner if engine else None,
            "ner_model": engine.nlp.model if engine else None,
            "toxicity_classifiers": sorted(c.name for c, _ in self._classifiers.values()),
            "semantic_classifiers": sorted(c.name for c, _ in self._semantic.values()),
        }

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._bulk.shutdown(wait=False, cancel_futures=True)
        self._stream.shutdown(wait=False, cancel_futures=True)

    # --- building -------------------------------------------------------------------------------------------

    def _build(self, name: str, spec: PolicySpec) -> Policy:
        return Policy(
            name,
            spec,
            self._stage(spec.input),
            self._stage(spec.output),
            self._stream,
            self.gate,
            self.deadline,
            self.cache,
        )

    def _stage(self, stage: StageSpec) -> list[Guard]:
        guards: list[Guard] = []
        if stage.prompt_injection is not None:
            guards.append(self._injection(stage.prompt_injection))
        if stage.toxicity is not None:
            guards.append(self._toxicity(stage.toxicity))
        if stage.harmful_request is not None:
            guards.append(self._harmful(stage.harmful_request))
        if stage.pii is not None:
            guards.append(self._pii_guard(stage.pii))
        return guards

    def _pii_guard(self, spec: PIIGuardSpec) -> PIIGuard:
        config = PIIConfig.model_validate(spec.model_dump(exclude={"action"}))
        key = config.model_dump_json()
        if key not in self._pii:
            self._pii[key] = PIIEngine(config)
            if config.ner and not self._pii[key].ner:
                log.warning("guardrails: NER model missing; PERSON/LOCATION are not detected (see /ready)")
        batcher = None
        if self._batch_pii:
            # One batcher per NLP pipeline, not per PII configuration: every engine shares the spaCy pipeline, so
            # the input and output guards of every policy prepare their texts in the same NER batches (a batch
            # costs ~1.3 ms less per text at 1 text than at 16; split per configuration, batches stayed ~2 jobs).
            shared = str(id(self._pii[key].nlp.engine))
            if shared not in self._pii_batchers:
                self._pii_batchers[shared] = PreparedBatcher(
                    self._pii[key].prepared_items, executor=self._executor, parallel=self._batch_parallel
                )
            batcher = self._pii_batchers[shared]
        return PIIGuard(
            self._pii[key], spec.action, self._executor, self._salt, bulk_executor=self._bulk, batcher=batcher
        )

    def _toxicity(self, spec: ToxicitySpec) -> ToxicityGuard:
        if spec.classifier == "semantic":
            return ToxicityGuard(self._task(spec.path, "toxicity"), spec.action, spec.threshold)
        key = (spec.classifier, spec.path)
        if key not in self._classifiers:
            classifier = build_classifier(spec.classifier, spec.path)
            batcher = MicroBatcher(classifier.scores, executor=self._executor, max_wait=self._batch_wait)
            self._classifiers[key] = (classifier, batcher)
        return ToxicityGuard(self._classifiers[key][1], spec.action, spec.threshold)

    def _harmful(self, spec: HarmfulRequestSpec) -> HarmfulRequestGuard:
        return HarmfulRequestGuard(self._task(spec.path, "harmful_request"), spec.action, spec.threshold)

    def _injection(self, spec: InjectionSpec) -> InjectionGuard:
        rules = (*DEFAULT_RULES, *spec.rules) if spec.builtin_rules else spec.rules
        scorer = self._task(spec.path, "prompt_injection") if spec.classifier == "semantic" else None
        return InjectionGuard(InjectionDetector(rules), spec.action, spec.threshold, self._executor, scorer)

    def _task(self, path: str | None, task: str) -> Scorer:
        """One task of the semantic classifier at ``path`` (None: the bundled one), loaded once and batched across
        requests and tasks (one encoder pass per text answers every task)."""
        if path not in self._semantic:
            classifier = SemanticClassifier(path or DEFAULT_ARTIFACT)
            rows = RecentRows(classifier.rows)
            batcher = MicroBatcher(rows, executor=self._executor, max_wait=self._batch_wait)
            self._semantic[path] = (classifier, batcher)
        classifier, batcher = self._semantic[path]
        if task not in classifier.tasks:
            raise ValueError(f"the semantic classifier {classifier.name!r} has no {task!r} head")
        return CategoryScorer(batcher, task)

    def _build_moderation(self, spec: PolicySpec) -> tuple[Guard, ...]:
        """Moderation reports every category with the default policy's thresholds (flag, never transform)."""
        stage = spec.input
        flag = {"action": Action.FLAG}
        pii_spec = (stage.pii or PIIGuardSpec()).model_copy(update=flag)
        toxicity = (stage.toxicity or spec.output.toxicity or ToxicitySpec()).model_copy(update=flag)
        harmful = (stage.harmful_request or HarmfulRequestSpec()).model_copy(update=flag)
        injection = (stage.prompt_injection or InjectionSpec()).model_copy(update=flag)
        return (
            self._pii_guard(pii_spec),
            self._toxicity(toxicity),
            self._harmful(harmful),
            self._injection(injection),
        )
