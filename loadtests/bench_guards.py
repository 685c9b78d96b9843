"""Guardrail costs: per-guard latency per KB, added time to first token when streaming, responsiveness under load.

    .venv/bin/python loadtests/bench_guards.py [--checkpoint DIR] [--iterations 40]
    OMP_NUM_THREADS=1 .venv/bin/python loadtests/bench_guards.py --cpu [--requests 320] [--rounds 3]

``--cpu``: only the CPU time the default policy's guards cost per chat request (a system prompt + 200-character
prompt in, a 200-character answer out, 32 concurrent requests, in-process) and per streamed 322-character answer,
each cost feature toggled, alternating configurations in one run (:mod:`loadtests.guard_cpu`).

1. p50/p99 per 1 KB of text for each guard: PII with pattern recognizers only, PII with the spaCy NER model,
   toxicity (one text per call, and 32 concurrent texts batched into one call), prompt injection.
2. Streaming: the real CPU engine generates; the default policy's output guards screen the stream. For each request
   it records when the engine produced its first text, when it had produced enough text to fill the hold-back window
   (``holdback_chars + chunk_chars``), and when the screen released its first text. Added TTFT = first release -
   first engine text; the acceptance bound is "window time + 5 ms".
3. Responsiveness: a small guarded chat request's latency through the gateway, alone and while 8 requests with
   8 KB prompts (NER-screened) run at the same time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from guardserve.guardrails import Action, PIIConfig, PIIEngine
from guardserve.guardrails.runtime import Guardrails

KB_TEXT = (
    "Hello team, following up on yesterday's call with Maria Gonzalez from the Berlin office. She asked us to send "
    "the signed contract to maria.gonzalez@example.org and to call her back at +1 415-555-0132 before Friday. "
    "The invoice was paid with card 4111 1111 1111 1111; please do not store it anywhere. Our deployment on EKS "
    "and S3 is healthy, the new GPU nodes arrived, and the latency dashboards look good after the last release. "
    "Next week we will review the rate limits for the largest tenants and the guardrail policies for streaming. "
    "Let me know if anything is missing from the notes, and thanks again for the quick turnaround on this work. "
    "Finally, remember that the quarterly planning meeting moved to Thursday at ten in the main conference room."
)[:1024]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def timed(fn: Callable[[], Awaitable[object]], iterations: int) -> list[float]:
    await fn()  # warm up
    out = []
    for _ in range(iterations):
        start = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def guard_costs(iterations: int) -> list[tuple[str, list[float]]]:
    guardrails = Guardrails.from_file()
    policy = guardrails.policy("default")
    by_name = {g.name: g for g in policy.output_guards + policy.input_guards}
    patterns = PIIEngine(PIIConfig(ner=False))
    ner = PIIEngine(PIIConfig())
    assert ner.ner, "the NER model is not installed"
    loop = asyncio.get_running_loop()
    toxicity, injection = by_name["toxicity"], by_name["prompt_injection"]

    async def batch_of_32() -> None:
        await asyncio.gather(*(toxicity.inspect(KB_TEXT + str(i)) for i in range(32)))

    rows = [
        ("pii, patterns only", await timed(lambda: loop.run_in_executor(None, patterns.analyze, KB_TEXT), iterations)),
        ("pii, patterns + NER", await timed(lambda: loop.run_in_executor(None, ner.analyze, KB_TEXT), iterations)),
        ("pii, analyze + mask (NER)", await timed(lambda: loop.run_in_executor(None, _mask, ner), iterations)),
        ("toxicity, 1 text", await timed(lambda: toxicity.inspect(KB_TEXT), iterations)),
        ("toxicity, 32 concurrent texts", await timed(batch_of_32, max(5, iterations // 4))),
        ("prompt injection", await timed(lambda: injection.inspect(KB_TEXT), iterations)),
    ]
    guardrails.close()
    return rows


def _mask(engine: PIIEngine) -> str:
    return engine.transform(KB_TEXT, engine.analyze(KB_TEXT), Action.MASK)


Timed = list[tuple[float, str]]  # (seconds since the request was submitted, text of one engine delta)


async def record_streams(checkpoint: Path, requests: int) -> list[Timed]:
    """Real generations from the CPU engine, with the time each delta arrived (the first one is a warm-up)."""
    from guardserve.models.cpu.engine import CPUEngine
    from guardserve.models.engine import ChatMessage, GenerationRequest, SamplingParams

    engine = await CPUEngine.load("bench", checkpoint)
    recorded = []
    try:
        for i in range(requests + 1):
            request = GenerationRequest(
                f"r{i}",
                "bench",
                SamplingParams(max_tokens=96, temperature=0.8, seed=i, ignore_eos=True),
                messages=(ChatMessage("user", f"Tell me about item {i} in a few sentences."),),
            )
            start = time.perf_counter()
            recorded.append([(time.perf_counter() - start, d.text) async for d in engine.stream(request) if d.text])
    finally:
        await engine.aclose()
    return recorded[1:]


async def screened_ttft(streams: list[Timed], live: Callable[[int], Any] | None) -> list[tuple[float, float, float]]:
    """Push each stream through the default policy's output guards.

    ``live=None`` replays the recorded deltas at their recorded times: the screening runs alone, as in front of a
    GPU upstream. Otherwise ``live(i)`` is an async iterator of deltas from the co-located CPU engine, generating
    while the guards work. Per stream: (added TTFT, hold-back window time, guard time), in ms.
    """
    guardrails = Guardrails.from_file()
    policy = guardrails.policy("default")
    window = policy.spec.stream.holdback_chars + policy.spec.stream.chunk_chars
    rows = []
    for i, recorded in enumerate(streams):
        screen = policy.stream(None)
        start = time.perf_counter()
        first_engine = filled = first_release = None
        produced = 0
        source = live(i) if live is not None else _replay(recorded, start)
        async for text in source:
            now = time.perf_counter()
            first_engine = first_engine or now
            produced += len(text)
            if filled is None and produced >= window:
                filled = now
            if (await screen.push(text)).text and first_release is None:
                first_release = time.perf_counter()
        if (await screen.close()).text and first_release is None:
            first_release = time.perf_counter()
        if None not in (first_engine, filled, first_release):
            assert first_engine is not None and filled is not None and first_release is not None
            rows.append(((first_release - first_engine) * 1000, (filled - first_engine) * 1000, screen.held_ms))
    guardrails.close()
    return rows


async def _replay(recorded: Timed, start: float) -> AsyncIterator[str]:
    for at, text in recorded:
        delay = start + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        yield text


async def _live_streams(checkpoint: Path, requests: int) -> list[tuple[float, float, float]]:
    from guardserve.models.cpu.engine import CPUEngine
    from guardserve.models.engine import ChatMessage, GenerationRequest, SamplingParams

    engine = await CPUEngine.load("bench", checkpoint)

    async def live(i: int) -> AsyncIterator[str]:
        request = GenerationRequest(
            f"r{i}",
            "bench",
            SamplingParams(max_tokens=96, temperature=0.8, seed=i, ignore_eos=True),
            messages=(ChatMessage("user", f"Tell me about item {i} in a few sentences."),),
        )
        async for delta in engine.stream(request):
            if delta.text:
                yield delta.text

    try:
        await screened_ttft([[]], live)  # warm up
        return await screened_ttft([[] for _ in range(requests)], live)
    finally:
        await engine.aclose()


def responsiveness(checkpoint: Path, probes: int) -> tuple[list[float], list[float]]:
    from guardserve.app.auth.settings import AuthSettings
    from guardserve.app.limits.settings import LimitSettings
    from guardserve.app.main import create_app
    from guardserve.app.settings import GuardrailSettings, Settings
    from guardserve.models.registry import ModelEntry
    from tests.support.servers import serve_in_thread

    settings = Settings(
        models=[ModelEntry(name="m", engine="cpu", checkpoint=checkpoint)],
        guardrails=GuardrailSettings(),
        auth=AuthSettings(enabled=False),  # this measures the guards, not keys and limits
        limits=LimitSettings(enabled=False),
    )
    server = serve_in_thread(create_app(settings))
    small = {"model": "m", "messages": [{"role": "user", "content": "Hi, I'm Ann."}], "max_tokens": 4}
    big = {"model": "m", "messages": [{"role": "user", "content": KB_TEXT * 8}], "max_tokens": 4}

    async def probe_latencies(under_load: bool) -> list[float]:
        async with httpx.AsyncClient(base_url=server.v1, timeout=120) as client:
            await client.post("/chat/completions", json=small)
            load: list[asyncio.Task[object]] = []
            if under_load:
                load = [asyncio.create_task(_repeat(client, big)) for _ in range(8)]
                await asyncio.sleep(0.5)
            out = []
            for _ in range(probes):
                start = time.perf_counter()
                response = await client.post("/chat/completions", json=small)
                assert response.status_code == 200, response.text
                out.append((time.perf_counter() - start) * 1000)
                await asyncio.sleep(0.05)
            for task in load:
                task.cancel()
            await asyncio.gather(*load, return_exceptions=True)
            return out

    try:
        return asyncio.run(probe_latencies(False)), asyncio.run(probe_latencies(True))
    finally:
        server.stop()


async def _repeat(client: httpx.AsyncClient, body: dict[str, object]) -> object:
    while True:
        await client.post("/chat/completions", json=body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="default: models/checkpoints/guardserve-tiny if present")
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--cpu", action="store_true", help="only the guards' CPU time per request and stream")
    parser.add_argument("--requests", type=int, default=320, help="--cpu: requests (and streams / 4) per round")
    parser.add_argument("--rounds", type=int, default=3, help="--cpu: rounds of every configuration")
    args = parser.parse_args()
    if args.cpu:
        from loadtests.guard_cpu import measure, report

        print(f"\nGuard CPU per chat request ({args.requests} requests x {args.rounds} rounds, concurrency 32)\n")
        report("chat", measure("chat", args.requests, args.rounds))
        streams = max(32, args.requests // 4)
        print(f"\nGuard CPU per streamed 322-character answer ({streams} streams x {args.rounds} rounds, 32 at once)\n")
        report("stream", measure("stream", streams, args.rounds))
        return

    print("\n1. Guard latency per 1 KB of text (ms)\n")
    print(f"{'guard':32} {'p50':>8} {'p99':>8}")
    for name, values in asyncio.run(guard_costs(args.iterations)):
        print(f"{name:32} {statistics.median(values):>8.2f} {pct(values, 99):>8.2f}")

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        bundled = Path(__file__).resolve().parents[1] / "models/checkpoints/guardserve-tiny"
        if checkpoint is None and (bundled / "config.json").is_file():
            checkpoint = bundled
        if checkpoint is None:
            from guardserve.models.untrained import build_untrained_checkpoint

            checkpoint = build_untrained_checkpoint(Path(tmp) / "default", size="default")
        print(f"\n2. Streaming time to first token with the default policy's output guards ({checkpoint.name})")
        replayed = asyncio.run(screened_ttft(asyncio.run(record_streams(checkpoint, args.streams)), None))
        colocated = asyncio.run(_live_streams(checkpoint, args.streams))
        for label, rows in (
            ("replayed at the engine's pace (guards alone)", replayed),
            ("co-located CPU engine", colocated),
        ):
            added = [r[0] for r in rows]
            window = [r[1] for r in rows]
            over = [a - w for a, w in zip(added, window, strict=True)]
            print(f"\n  {label}: {len(rows)} streams")
            print(f"  added TTFT (ms):            p50 {statistics.median(added):7.1f}   max {max(added):7.1f}")
            print(f"  hold-back window (ms):      p50 {statistics.median(window):7.1f}   max {max(window):7.1f}")
            print(
                f"  added - window (ms):        p50 {statistics.median(over):7.1f}   max {max(over):7.1f}   (bound: 5)"
            )
            print(f"  guard time per stream (ms): p50 {statistics.median(r[2] for r in rows):7.1f}")

        print("\n3. A small guarded chat request through the gateway (ms)\n")
        idle, loaded = responsiveness(checkpoint, args.probes)
        print(f"{'alone':40} p50 {statistics.median(idle):7.1f}   p99 {pct(idle, 99):7.1f}")
        print(
            f"{'while 8 x 8 KB prompts are screened':40} "
            f"p50 {statistics.median(loaded):7.1f}   p99 {pct(loaded, 99):7.1f}"
        )


if __name__ == "__main__":
    main()
