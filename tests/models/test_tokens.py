"""Prompt counts for reservations equal the engine's own counts (tiny checkpoint, real CPU engine)."""

from __future__ import annotations

from pathlib import Path

import httpx

from guardserve.models.engine import ChatMessage, GenerationRequest, SamplingParams
from guardserve.models.tokens import EstimateCounter, TokenizerCounter
from tests.conftest import TINY
from tests.support.servers import LiveServer

CHATS = [
    [("user", "Hello!")],
    [("system", "You are terse."), ("user", "What is 12 + 30?"), ("assistant", "42"), ("user", "Thanks 🙂")],
    [("user", "  spaces\nand\ttabs  " * 20)],
]
PROMPTS = ["Once upon a time", "数字 123 and émojis 🎉"]


def chat(messages: list[tuple[str, str]]) -> GenerationRequest:
    turns = tuple(ChatMessage(role, text) for role, text in messages)  # type: ignore[arg-type]
    return GenerationRequest("r", TINY, SamplingParams(max_tokens=1), messages=turns)


def test_counts_equal_the_engine(gateway: LiveServer, tiny_checkpoint: Path) -> None:
    counter = TokenizerCounter.from_dir(tiny_checkpoint)
    for messages in CHATS:
        body = {"model": TINY, "max_tokens": 1, "messages": [{"role": r, "content": c} for r, c in messages]}
        usage = httpx.post(f"{gateway.v1}/chat/completions", json=body, timeout=30).json()["usage"]
        assert counter.count(chat(messages)) == usage["prompt_tokens"]
    for prompt in PROMPTS:
        body = {"model": TINY, "max_tokens": 1, "prompt": prompt}
        usage = httpx.post(f"{gateway.v1}/completions", json=body, timeout=30).json()["usage"]
        request = GenerationRequest("r", TINY, SamplingParams(max_tokens=1), prompt=prompt)
        assert counter.count(request) == usage["prompt_tokens"]


def test_the_estimate_counts_bytes_and_message_overhead() -> None:
    estimate = EstimateCounter(chars_per_token=3.0, per_message=4, overhead=3)
    assert estimate.count(chat([("user", "abcdef")])) == 3 + 4 + 2
    assert estimate.count(chat([("user", "é")])) == 3 + 4 + 1  # 2 UTF-8 bytes round up
    prompt = GenerationRequest("r", TINY, SamplingParams(), prompt="x" * 30)
    assert estimate.count(prompt) == 10 + 1


async def test_served_models_count_with_their_tokenizer_or_estimate(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from guardserve.app.limits.counting import TokenCounters
    from guardserve.models.registry import ServedModel, load_registry

    (tmp_path / "registry.yaml").write_text(
        "models:\n"
        f"  exact: {{engine: openai, url: 'http://x/v1', context_length: 2048, tokenizer: {tiny_checkpoint}}}\n"
        "  relative: {engine: openai, url: 'http://x/v1', context_length: 2048, tokenizer: tok}\n"
        "  estimated: {engine: openai, url: 'http://x/v1', context_length: 2048}\n"
    )
    entries = {e.name: e for e in load_registry(tmp_path / "registry.yaml")}
    assert entries["relative"].tokenizer == tmp_path / "tok"  # relative to the registry file
    request = chat(CHATS[1])
    counters = TokenCounters()
    exact = ServedModel(entries["exact"], None, 2048, True, 0)  # type: ignore[arg-type]
    assert await counters.count(exact, request) == TokenizerCounter.from_dir(tiny_checkpoint).count(request)
    for name in ("relative", "estimated"):  # no tokenizer.json there: the estimate
        served = ServedModel(entries[name], None, 2048, True, 0)  # type: ignore[arg-type]
        assert await counters.count(served, request) == EstimateCounter().count(request)
