"""CPU engine throughput: continuous batching versus one ``model.generate`` call per request, in sequence.

    .venv/bin/python loadtests/bench_cpu_engine.py [--checkpoint DIR] [--requests 32] [--tokens 64]

Every request generates exactly ``--tokens`` tokens (greedy, end-of-sequence ignored) so the work is the same
in every mode. Without ``--checkpoint`` an untrained checkpoint of the default model shape (hidden 256, 4 layers,
~4M parameters) is built in a temporary directory: throughput depends on the shape, not on the weights.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.cpu.config import CPUEngineConfig
from models.cpu.engine import CPUEngine
from models.engine import ChatMessage, GenerationRequest, SamplingParams


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


def baseline(checkpoint: Path, texts: list[str], tokens: int) -> Row:
    import torch

    from models.hf import transformers_offline

    transformers = transformers_offline()
    model = transformers.AutoModelForCausalLM.from_pretrained(checkpoint)
    model.eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)

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


async def engine_rows(checkpoint: Path, texts: list[str], tokens: int, levels: list[int]) -> list[Row]:
    engine = await CPUEngine.load("bench", checkpoint, CPUEngineConfig(max_batch=max(levels)))
    try:
        await engine_run(engine, texts[:2], 8, 2)  # warm up
        return [await engine_run(engine, texts, tokens, c) for c in levels]
    finally:
        await engine.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 16])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            from models.untrained import build_untrained_checkpoint

            checkpoint = build_untrained_checkpoint(Path(tmp) / "default", size="default")
        texts = prompts(args.requests)
        rows = [baseline(checkpoint, texts, args.tokens)]
        rows += asyncio.run(engine_rows(checkpoint, texts, args.tokens, args.concurrency))

    base = rows[0].tokens_per_s
    print(f"\ncheckpoint: {checkpoint}  requests: {args.requests}  tokens/request: {args.tokens}\n")
    header = f"{'mode':34} {'conc':>4} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'p50 latency':>12} {'vs base':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        p50 = statistics.median(r.latencies)
        print(
            f"{r.mode:34} {r.concurrency:>4} {r.tokens:>7} {r.seconds:>8.2f} {r.tokens_per_s:>9.0f} "
            f"{p50 * 1000:>10.0f}ms {r.tokens_per_s / base:>7.2f}x"
        )


if __name__ == "__main__":
    main()
