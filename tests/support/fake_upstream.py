"""A fast fake OpenAI-compatible upstream (pure ASGI): isolates the gateway's own cost in tests and benchmarks.

Answers ``/v1/models``, ``/v1/completions`` and ``/v1/chat/completions`` (whole or streamed) with "ok" (or a given
``reply``, streamed in pieces of the given ``chunks`` sizes, cycled) and a fixed usage of 5 prompt + 1 completion
tokens, after an optional delay; counts the generations it served.

    python -m tests.support.fake_upstream --port 8001 [--delay 0.0]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from tests.support.asgi import lifespan, read_body

PROMPT_TOKENS, COMPLETION_TOKENS = 5, 1
USAGE = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS, "total_tokens": 6}


class FakeUpstream:
    def __init__(self, name: str = "fake", delay: float = 0.0, reply: str = "ok", chunks: Sequence[int] = ()) -> None:
        self.name = name
        self.delay = delay
        self.served = 0
        self.reply = reply
        self.chunks = tuple(chunks)  # streamed piece sizes, cycled (none: the reply in one piece)

    def pieces(self) -> list[str]:
        if not self.chunks:
            return [self.reply]
        sizes, out, i = itertools.cycle(self.chunks), [], 0
        while i < len(self.reply):
            size = next(sizes)
            out.append(self.reply[i : i + size])
            i += size
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        body = await read_body(receive)
        path = scope["path"]
        if path.endswith("/models"):
            await self._send(send, {"object": "list", "data": [{"id": self.name, "object": "model"}]})
            return
        request: dict[str, Any] = orjson.loads(body or b"{}")
        if self.delay:
            await asyncio.sleep(self.delay)
        self.served += 1
        chat = path.endswith("/chat/completions")
        if request.get("stream"):
            await self._stream(send, chat, self.pieces())
            return
        choice = {"index": 0, "finish_reason": "stop"}
        choice |= {"message": {"role": "assistant", "content": self.reply}} if chat else {"text": self.reply}
        await self._send(send, {"id": "x", "object": "completion", "choices": [choice], "usage": USAGE})

    @staticmethod
    async def _send(send: Send, payload: dict[str, Any]) -> None:
        data = orjson.dumps(payload)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    @staticmethod
    async def _stream(send: Send, chat: bool, pieces: Sequence[str]) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        deltas = [{"delta": {"content": p}} if chat else {"text": p} for p in pieces]
        events = [
            *({"choices": [{"index": 0, **delta, "finish_reason": None}]} for delta in deltas),
            {"choices": [{"index": 0, "delta": {}, "text": "", "finish_reason": "stop"}]},
            {"choices": [], "usage": USAGE},
        ]
        for event in events:
            chunk = b"data: " + orjson.dumps(event) + b"\n\n"
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--name", default="fake")
    args = parser.parse_args()
    uvicorn.run(FakeUpstream(args.name, args.delay), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
