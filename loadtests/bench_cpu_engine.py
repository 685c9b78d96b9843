"""CPU engine throughput: continuous batching versus one ``model.generate`` call per request, in sequence.

    .venv/bin/python loadtests/bench_cpu_engine.py [--checkpoint DIR] [--requests 32] [--tokens 64] [--rounds 2]
        [--threads N] [--out results.json]

Every request generates exactly ``--tokens`` tokens (greedy, end-of-sequence ignored) so the work is the same
in every mode. Without ``--checkpoint`` an untrained checkpoint of the default model shape (hidden 256, 4 layers,
~4M parameters) is built in a temporary directory: throughput depends on the shape, not on the weights. The
baseline and the engine run on the same torch thread count (``--threads``, default the engine's own default), and
the modes alternate for ``--rounds`` rounds (baseline, engine at each concurrency, baseline, ...); medians are
reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guardserve.models.cpu.config import CPUEngineConfig, default_threads
from guardserve.models.cpu.engine import CPUEngine
from guardserve.models.engine import ChatMessage, GenerationRequest, SamplingParams


@dataclass
class Row:
    mode: str
    concurrency: int
    requests: int
    tokens: int
    seconds: float
    latencies: list[float]

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def prompts(n: int) -> list[str]:
    return [f"Question {i}: please explain item number {i} in a few words." for i in range(n)]


def baseline(model: Any, tokenizer: Any, texts: list[str], tokens: int) -> Row:
    import torch

    def encode(text: str) -> dict[str, torch.Tensor]:
        messages = [{"role": "user", "content": text}]
        return tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    with torch.inference_mode():
        model.generate(**encode("warm up"), max_new_tokens=8, do_sample=False)
        latencies, produced = [], 0
        start = time.perf_counter()
        for text in texts:
            t0 = time.perf_counter()
            inputs = encode(text)
            out = model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
            produced += out.shape[1] - inputs["input_ids"].shape[1]
            latencies.append(time.perf_counter() - t0)
        seconds = time.perf_counter() - start
    return Row("model.generate, sequential", 1, len(texts), produced, seconds, latencies)


async def engine_run(engine: CPUEngine, texts: list[str], tokens: int, concurrency: int) -> Row:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in texts:
        queue.put_nowait(text)
    latencies: list[float] = []
    produced = 0

    async def worker() -> None:
        nonlocal produced
        while not queue.empty():
            text = queue.get_nowait()
            request = GenerationRequest(
                request_id=text,
                model="bench",
                sampling=SamplingParams(max_tokens=tokens, temperature=0.0, ignore_eos=True),
                messages=(ChatMessage("user", text),),
            )
            t0 = time.perf_counter()
            result = await engine.generate(request)
            latencies.append(time.perf_counter() - t0)
            produced += result.completion_tokens

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    return Row("CPU engine (continuous batching)", concurrency, len(texts), produced, seconds, latencies)


async def alternate(checkpoint: Path, texts: list[str], args: argparse.Namespace) -> list[Row]:
    """Every mode once per round, in the same order, on the same thread count."""
    import torch

    from guardserve.models.hf import transformers_offline

    transformers = transformers_offline()
    model = transformers.AutoModelForCausalLM.from_pretrained(checkpoint)
    model.eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    config = CPUEngineConfig(max_batch=max(args.concurrency), threads=args.threads)
    engine = await CPUEngine.load("bench", checkpoint, config)
    torch.set_num_threads(config.threads or default_threads())  # the baseline's too (the engine set its own)
    rows: list[Row] = []
    try:
        await engine_run(engine, texts[:2], 8, 2)  # warm up
        for _ in range(args.rounds):
            rows.append(await asyncio.to_thread(baseline, model, tokenizer, texts, args.tokens))
            rows += [await engine_run(engine, texts, args.tokens, c) for c in args.concurrency]
    finally:
        await engine.aclose()
    return rows


def medians(rows: list[Row]) -> list[dict[str, Any]]:
    out = []
    for key in dict.fromkeys((r.mode, r.concurrency) for r in rows):
        same = [r for r in rows if (r.mode, r.concurrency) == key]
        out.append(
            {
                "mode": key[0],
                "concurrency": key[1],
                "rounds": len(same),
                "tokens_per_s": statistics.median(r.tokens_per_s for r in same),
                "p50_ms": statistics.median(statistics.median(r.latencies) for r in same) * 1000,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both (default: the engine's)")
    parser.add_argument("--out", type=Path, help="JSON results")
    args = parser.parse_args()
    threads = args.threads or default_threads()

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            from guardserve.models.untrained import build_untrained_checkpoint

            checkpoint = build_untrained_checkpoint(Path(tmp) / "default", size="default")
        rows = medians(asyncio.run(alternate(checkpoint, prompts(args.requests), args)))

    base = rows[0]["tokens_per_s"]
    print(f"\ncheckpoint: {checkpoint}  requests: {args.requests}  tokens/request: {args.tokens}  threads: {threads}\n")
    lines = ["| mode | concurrency | tokens/s | p50 latency ms | vs baseline |", "|---|---|---|---|---|"]
    for r in rows:
        r["vs_baseline"] = r["tokens_per_s"] / base
        lines.append(
            f"| {r['mode']} | {r['concurrency']} | {r['tokens_per_s']:.0f} | {r['p50_ms']:.0f} |"
            f" {r['vs_baseline']:.2f}x |"
        )
    print("\n".join(lines))
    if args.out:
        report = {"checkpoint": str(checkpoint), "threads": threads, "args": vars(args) | {"out": str(args.out)}}
        args.out.write_text(json.dumps(report | {"rows": rows}, indent=2, default=str))
        args.out.with_suffix(".md").write_text(f"# CPU engine ({threads} torch threads)\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
