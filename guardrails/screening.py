"""Screen whole texts with a stage's guards: every guard inspects concurrently, then the policy's actions apply.

A guard that can screen many texts in one call (:class:`~guardrails.guards.InspectsMany`: PII) gets all of its
targets at once, so one request's screening holds one of its worker threads at a time (bounded parallelism: the
guard pool serves concurrent requests in arrival order); the other guards inspect each target concurrently (the
classifier batches them into one call).

Blocking guards win over transforming ones; a guard that fails is handled by the policy's ``on_error``:
``fail_closed`` treats the failure as a block, ``fail_open`` lets the text through and records the error. A guard
still inspecting when the screening's ``deadline`` passes is cancelled and counts as failed (``TimeoutError``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from guardserve.guardrails.cache import ScreeningCache
from guardserve.guardrails.guards import Guard, Inspection, InspectsMany
from guardserve.guardrails.pii.pseudonyms import Pseudonymizer
from guardserve.guardrails.types import Action, Decision, Finding, Stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """One text to screen, and which guards look at it (e.g. injection checks only the user's own messages)."""

    text: str
    guards: tuple[str, ...] | None = None  # None: every guard of the stage
    cached: bool = False  # a text that recurs unchanged (a system prompt): its inspections may come from the cache

    def wants(self, guard: Guard) -> bool:
        return self.guards is None or guard.name in self.guards


@dataclass
class StageOutcome:
    texts: list[str]
    decisions: list[Decision] = field(default_factory=list)

    @property
    def blocked(self) -> Decision | None:
        return next((d for d in self.decisions if d.action is Action.BLOCK), None)


SpanFactory = Callable[[str, Mapping[str, str]], AbstractContextManager[object]]


async def _timed(
    guard: Guard, texts: list[str], stage: Stage, span: SpanFactory | None, deadline: float | None
) -> tuple[list[Inspection | BaseException], float]:
    """One guard call: all ``texts`` in one :meth:`~guardrails.guards.InspectsMany.inspect_many` where the guard
    has it, else ``texts`` is one text for :meth:`Guard.inspect`. One result per text."""
    start = time.perf_counter()
    attributes = {"guardserve.guard": guard.name, "guardserve.stage": stage.value}
    with span(f"guard.{guard.name}", attributes) if span is not None else nullcontext():
        results: list[Inspection | BaseException]
        try:
            if isinstance(guard, InspectsMany):
                results = list(await guard.inspect_many(texts, deadline))
            else:
                results = [await asyncio.wait_for(guard.inspect(texts[0]), deadline)]
        except Exception as exc:  # reported through the decision; never propagated to the request
            results = [exc] * len(texts)
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            log.warning("guard %s failed: %s", guard.name, type(failed).__name__)
    return results, (time.perf_counter() - start) * 1000


def _first(item: tuple[int, object, float]) -> int:
    return item[0]


async def screen(
    guards: Sequence[Guard],
    targets: Sequence[Target],
    stage: Stage,
    *,
    pseudonyms: Pseudonymizer | None,
    fail_closed: bool,
    span: SpanFactory | None = None,
    deadline: float | None = None,
    cache: ScreeningCache | None = None,
) -> StageOutcome:
    """``span``, when given, opens a tracing span around each guard call (e.g. the gateway's tracer).
    ``deadline``: seconds every guard has (they run concurrently); None: no limit. ``cache``: inspections of
    ``cached`` targets by guards that have a ``cache_key`` are looked up there first and stored there after."""
    calls: list[tuple[Guard, list[int]]] = []  # a guard and the targets one call of it inspects
    hits: list[tuple[Guard, int, Inspection]] = []  # inspections found in the cache
    keys: dict[tuple[int, int], bytes] = {}  # (id(guard), target) -> cache key, for the inspections to store
    for guard in guards:
        wanted = [i for i, t in enumerate(targets) if t.wants(guard)]
        guard_key: str | None = getattr(guard, "cache_key", None) if cache is not None else None
        if cache is not None and guard_key is not None:
            for i in [i for i in wanted if targets[i].cached]:
                key = cache.key(guard_key, targets[i].text)
                remembered = cache.get(key) if key is not None else None
                if remembered is not None:
                    hits.append((guard, i, remembered))
                    wanted.remove(i)
                elif key is not None:
                    keys[(id(guard), i)] = key
        if isinstance(guard, InspectsMany):
            calls += [(guard, wanted)] if wanted else []
        else:
            calls += [(guard, [i]) for i in wanted]
    timed = await asyncio.gather(*(_timed(g, [targets[i].text for i in ii], stage, span, deadline) for g, ii in calls))
    jobs: list[tuple[Guard, int]] = []
    results: list[tuple[Inspection | BaseException, float]] = []
    for (guard, indices), (found, ms) in zip(calls, timed, strict=True):
        jobs += [(guard, i) for i in indices]
        results += [(r, ms) for r in found]
        for i, r in zip(indices, found, strict=True):
            key = keys.get((id(guard), i))
            if cache is not None and key is not None and isinstance(r, Inspection):
                cache.put(key, r)
    for guard, i, found_inspection in hits:
        jobs.append((guard, i))
        results.append((found_inspection, 0.0))
    texts = [t.text for t in targets]
    decisions: list[Decision] = []
    for guard in guards:
        # in target order, cached or not: transforms (pseudonym numbering) run in the same order either way
        mine = sorted(((i, r, ms) for (g, i), (r, ms) in zip(jobs, results, strict=True) if g is guard), key=_first)
        if not mine:
            continue
        latency = max(ms for _, _, ms in mine)  # they ran concurrently
        errors = [r for _, r, _ in mine if isinstance(r, BaseException)]
        inspections = [(i, r) for i, r, _ in mine if isinstance(r, Inspection)]
        findings: tuple[Finding, ...] = tuple(f for _, r in inspections for f in r.findings)
        spans = tuple((i, f.start, f.end, f.entity_type) for i, r in inspections for f in r.findings)
        score = max((r.score for _, r in inspections if r.score is not None), default=None)
        if errors:
            action = Action.BLOCK if fail_closed else Action.ALLOW
            error = f"{type(errors[0]).__name__}: guard failed"
            decisions.append(Decision(guard.name, stage, action, findings, latency, error=error, score=score))
            continue
        triggered = any(r.triggered for _, r in inspections)
        action = guard.action if triggered else Action.ALLOW
        decisions.append(Decision(guard.name, stage, action, findings, latency, score=score, spans=spans))
        if triggered and guard.action.transforms:
            for i, r in inspections:
                if r.findings:
                    texts[i] = guard.transform(texts[i], r.findings, pseudonyms)
    return StageOutcome(texts, decisions)
