"""PII scrubbing through the guardrails PII engine: every finding becomes a typed placeholder (``<PERSON>``,
``<EMAIL_ADDRESS>``...).

Presidio's cost is mostly per call, so records are analysed in chunks (their turns joined by blank lines) and the
findings mapped back to each turn. ``workers`` > 1 spreads chunks over processes, each with its own engine.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from guardserve.training.recipe import PIIScrubConfig

SEPARATOR = "\n\n"
CHUNK_CHARS = 2000

_engine: Any = None


def make_engine(config: PIIScrubConfig) -> Any:
    from guardserve.guardrails import PIIConfig, PIIEngine

    # Offline: the NER model reads every character (no name-sentence scoping: a training corpus has no latency budget),
    # and every place it finds is scrubbed, as before the gateway's personal-place rule (guardrails.pii.places).
    config_ = PIIConfig(
        entities=config.entities,
        threshold=config.threshold,
        ner=config.ner,
        ner_scope="whole_text",
        place_scope="all",
    )
    return PIIEngine(config_)


def _init_worker(config: PIIScrubConfig) -> None:
    global _engine
    _engine = make_engine(config)


def scrub_chunk(engine: Any, items: list[list[str]]) -> list[tuple[list[str], Counter[str]]]:
    """Scrub several records' turns with one analyze call; returns (new turns, entity counts) per record."""
    from guardserve.guardrails import Action, Finding

    flat = [text for turns in items for text in turns]
    joined = SEPARATOR.join(flat)
    findings = engine.analyze(joined)
    spans: list[tuple[int, int]] = []
    offset = 0
    for text in flat:
        spans.append((offset, offset + len(text)))
        offset += len(text) + len(SEPARATOR)
    out: list[tuple[list[str], Counter[str]]] = []
    k = 0
    for turns in items:
        new_turns: list[str] = []
        counts: Counter[str] = Counter()
        for text in turns:
            start, end = spans[k]
            k += 1
            local = [
                Finding(f.entity_type, max(f.start, start) - start, min(f.end, end) - start, f.score)
                for f in findings
                if f.start < end and f.end > start
            ]
            counts.update(f.entity_type for f in local)
            new_turns.append(engine.transform(text, local, Action.PLACEHOLDER) if local else text)
        out.append((new_turns, counts))
    return out


def _scrub_in_worker(items: list[list[str]]) -> list[tuple[list[str], Counter[str]]]:
    return scrub_chunk(_engine, items)


def chunks(items: list[list[str]], limit: int = CHUNK_CHARS) -> list[list[list[str]]]:
    out: list[list[list[str]]] = []
    current: list[list[str]] = []
    size = 0
    for turns in items:
        length = sum(len(t) + len(SEPARATOR) for t in turns)
        if current and size + length > limit:
            out.append(current)
            current, size = [], 0
        current.append(turns)
        size += length
    if current:
        out.append(current)
    return out


def scrub_all(items: list[list[str]], config: PIIScrubConfig) -> list[tuple[list[str], Counter[str]]]:
    parts = chunks(items)
    if config.workers <= 1 or len(parts) < 8:
        engine = make_engine(config)
        return [r for part in parts for r in scrub_chunk(engine, part)]
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(config.workers, initializer=_init_worker, initargs=(config,)) as pool:
        results = pool.map(_scrub_in_worker, parts, chunksize=4)
    return [r for part in results for r in part]
