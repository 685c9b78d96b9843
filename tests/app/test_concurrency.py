"""16 simultaneous streams through the openai client all complete, each with exactly its own answer."""

from __future__ import annotations

import asyncio

import openai
import pytest

from tests.conftest import TINY
from tests.support.servers import LiveServer


async def run_streams(base_url: str, n: int = 16) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)

    def params(i: int) -> dict[str, object]:
        return dict(
            model=TINY,
            messages=[{"role": "user", "content": f"request number {i} " * (1 + i % 4)}],
            max_tokens=20 + 3 * i,
            temperature=1.0,
            seed=1000 + i,
            extra_body={"ignore_eos": True},
        )

    expected = [
        (await client.chat.completions.create(**params(i))).choices[0].message.content  # type: ignore[call-overload]
        for i in range(n)
    ]

    async def one(i: int) -> tuple[str, str | None, int]:
        stream = await client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **params(i))  # type: ignore[call-overload]
        text, finish, usage = "", None, 0
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage.completion_tokens
        return text, finish, usage

    results = await asyncio.gather(*(one(i) for i in range(n)))
    await client.close()
    for i, (text, finish, usage) in enumerate(results):
        assert finish == "length"
        assert usage == 20 + 3 * i
        assert text == expected[i], f"stream {i} differs from its solo answer"


@pytest.mark.slow
def test_16_streams_cpu_engine(gateway: LiveServer) -> None:
    asyncio.run(run_streams(gateway.v1))
    assert gateway.app.state.models[TINY].engine.stats.peak_batch >= 8


@pytest.mark.slow
def test_16_streams_http_engine(http_gateway: LiveServer) -> None:
    asyncio.run(run_streams(http_gateway.v1))
