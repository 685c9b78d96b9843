"""Greedy answers from a checkpoint through the CPU engine: exactly what the gateway would serve, batched."""

from __future__ import annotations

import asyncio
from pathlib import Path

from guardserve.models.cpu.config import CPUEngineConfig
from guardserve.models.cpu.engine import CPUEngine
from guardserve.models.engine import ChatMessage, GenerationRequest, SamplingParams


def generate(checkpoint: Path, prompts: list[str], max_new_tokens: int, batch: int = 64) -> list[str]:
    return asyncio.run(_generate(checkpoint, prompts, max_new_tokens, batch))


async def _generate(checkpoint: Path, prompts: list[str], max_new_tokens: int, batch: int) -> list[str]:
    config = CPUEngineConfig(max_batch=batch, max_waiting=len(prompts) + 1)
    engine = await CPUEngine.load("eval", checkpoint, config)
    try:
        requests = [
            GenerationRequest(
                request_id=f"eval-{i}",
                model="eval",
                sampling=SamplingParams(max_tokens=max_new_tokens, temperature=0.0),
                messages=(ChatMessage("user", prompt),),
            )
            for i, prompt in enumerate(prompts)
        ]
        completions = await asyncio.gather(*(engine.generate(r) for r in requests))
    finally:
        await engine.aclose()
    return [c.text for c in completions]
