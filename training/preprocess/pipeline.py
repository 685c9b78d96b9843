"""Run the preprocessing steps in order over all records, counting what each did."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping

from guardserve.training.preprocess import dedupe, filters, markup, pii, toxicity, unicode
from guardserve.training.preprocess.report import StepReport
from guardserve.training.recipe import PreprocessConfig
from guardserve.training.records import Record

log = logging.getLogger(__name__)


def run_pipeline(
    records: list[Record], config: PreprocessConfig, skips: Mapping[str, tuple[str, ...]]
) -> tuple[list[Record], list[StepReport]]:
    """``skips`` maps a source name to the steps it skips."""
    reports: list[StepReport] = []

    def skipping(step: str) -> set[str]:
        return {source for source, steps in skips.items() if step in steps}

    def run(step: str, enabled: bool, fn: Callable[[list[Record], set[str], StepReport], list[Record]]) -> None:
        nonlocal records
        report = StepReport(step, input=len(records))
        if not enabled:
            report.output = len(records)
            report.details["disabled"] = True
            reports.append(report)
            return
        skip = skipping(step)
        report.skipped_sources = sorted(skip)
        started = time.perf_counter()
        records = fn(records, skip, report)
        report.seconds = time.perf_counter() - started
        report.output = len(records)
        log.info("preprocess %s: %d -> %d records (%d modified)", step, report.input, report.output, report.modified)
        reports.append(report)

    run("markup", config.markup, lambda rs, skip, rep: _map(rs, skip, rep, markup.strip_markup))
    form = config.unicode_form
    run("unicode", form != "none", lambda rs, skip, rep: _map(rs, skip, rep, lambda t: unicode.normalize(t, form)))
    run("filters", True, lambda rs, skip, rep: _filter(rs, skip, rep, config))
    run("exact_dedupe", config.exact_dedupe, _exact)
    near = config.near_dedupe
    run("near_dedupe", near is not None, lambda rs, skip, rep: _near(rs, skip, rep, near))
    run("pii", config.pii is not None, lambda rs, skip, rep: _pii(rs, skip, rep, config))
    run("toxicity", config.toxicity is not None, lambda rs, skip, rep: _toxicity(rs, skip, rep, config))
    return records, reports


def _map(records: list[Record], skip: set[str], report: StepReport, fn: Callable[[str], str]) -> list[Record]:
    out = []
    for record in records:
        if record.source in skip:
            out.append(record)
            continue
        contents = record.contents()
        new = [fn(c) for c in contents]
        if new != contents:
            report.modified += 1
            report.modified_by_source[record.source] += 1
            record = record.with_contents(new)
        out.append(record)
    return out


def _filter(records: list[Record], skip: set[str], report: StepReport, config: PreprocessConfig) -> list[Record]:
    reasons: Counter[str] = Counter()
    out = []
    for record in records:
        reason = None if record.source in skip else filters.reject_reason(record, config.filters)
        if reason is None:
            out.append(record)
        else:
            reasons[reason] += 1
            report.removed_by_source[record.source] += 1
    report.details["removed_by_reason"] = dict(sorted(reasons.items()))
    return out


def _exact(records: list[Record], skip: set[str], report: StepReport) -> list[Record]:
    seen: set[str] = set()
    out = []
    for record in records:
        if record.source in skip:
            out.append(record)
            continue
        key = dedupe.exact_key(record)
        if key in seen:
            report.removed_by_source[record.source] += 1
            continue
        seen.add(key)
        out.append(record)
    return out


def _near(records: list[Record], skip: set[str], report: StepReport, config: object) -> list[Record]:
    from guardserve.training.recipe import NearDedupeConfig

    assert isinstance(config, NearDedupeConfig)
    candidates = [(i, r) for i, r in enumerate(records) if r.source not in skip]
    finder = dedupe.NearDuplicateFinder(config)
    kept = finder.keep_all((str(i), r.flat()) for i, r in candidates)
    drop = {i for (i, _), keep in zip(candidates, kept, strict=True) if not keep}
    for i in drop:
        report.removed_by_source[records[i].source] += 1
    report.details.update(threshold=config.threshold, num_perm=config.num_perm, shingle_words=config.shingle_words)
    return [r for i, r in enumerate(records) if i not in drop]


def _pii(records: list[Record], skip: set[str], report: StepReport, config: PreprocessConfig) -> list[Record]:
    assert config.pii is not None
    targets = [i for i, r in enumerate(records) if r.source not in skip]
    results = pii.scrub_all([records[i].contents() for i in targets], config.pii)
    entities: Counter[str] = Counter()
    by_source: dict[str, Counter[str]] = {}
    out = list(records)
    for i, (contents, counts) in zip(targets, results, strict=True):
        if counts:
            record = records[i]
            entities.update(counts)
            by_source.setdefault(record.source, Counter()).update(counts)
            report.modified += 1
            report.modified_by_source[record.source] += 1
            out[i] = record.with_contents(contents)
    report.details["engine"] = {
        "ner": config.pii.ner,
        "entities": list(config.pii.entities),
        "threshold": config.pii.threshold,
        "action": "placeholder",
    }
    report.details["findings_by_entity"] = dict(sorted(entities.items()))
    report.details["findings_by_source"] = {s: dict(sorted(c.items())) for s, c in sorted(by_source.items())}
    return out


def _toxicity(records: list[Record], skip: set[str], report: StepReport, config: PreprocessConfig) -> list[Record]:
    assert config.toxicity is not None
    targets = [i for i, r in enumerate(records) if r.source not in skip]
    scores = toxicity.record_scores([records[i] for i in targets], config.toxicity)
    drop = {i for i, score in zip(targets, scores, strict=True) if score >= config.toxicity.threshold}
    for i in drop:
        report.removed_by_source[records[i].source] += 1
    report.details.update(
        classifier=config.toxicity.classifier, threshold=config.toxicity.threshold, roles=list(config.toxicity.roles)
    )
    return [r for i, r in enumerate(records) if i not in drop]
