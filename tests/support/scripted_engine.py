"""A test double for the *model's words*, used only where a test must control exactly what the model says.

The guardrails' output stage can only be tested end to end if the model emits a chosen text (an e-mail split across
chunks, an insult, a placeholder it was given): no real checkpoint does that on demand. Everything else on the path
(the gateway, SSE, Presidio, the classifier, the openai client) is real. The reply may depend on the request, e.g.
echo the pseudonymized name the model received.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from guardserve.models.engine import Completion, Delta, EngineHealth, GenerationRequest

Reply = Callable[[GenerationRequest], str]


class ScriptedEngine:
    def __init__(self, reply: Reply, chunk_chars: int = 3) -> None:
        self._reply = reply
        self._chunk = chunk_chars
        self.requests: list[GenerationRequest] = []  # what reached the engine (after the input guards)

    async def generate(self, request: GenerationRequest) -> Completion:
        self.requests.append(request)
        text = self._reply(request)
        return Completion(text=text, finish_reason="stop", prompt_tokens=7, completion_tokens=len(text) // 4 + 1)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        self.requests.append(request)
        text = self._reply(request)
        yield Delta("", 7, 0)
        pieces = [text[i : i + self._chunk] for i in range(0, len(text), self._chunk)]
        for n, piece in enumerate(pieces, start=1):
            await asyncio.sleep(0)
            yield Delta(piece, 7, n)
        yield Delta("", 7, len(pieces), "stop")

    async def health(self) -> EngineHealth:
        return EngineHealth(True, "scripted", 0)

    async def aclose(self) -> None:
        return None
