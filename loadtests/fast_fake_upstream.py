"""A deliberately fast FAKE OpenAI upstream, for benchmarks only: no model, canned answers, ~0.05 ms CPU a request.

It exists to measure what sits in front of it (the gateway), so it must cost next to nothing itself: a raw
``asyncio.Protocol`` with httptools' parser on uvloop (where installed), answers built from bytes prepared once per
shape, keep-alive, no framework. OpenAI shapes:

* ``GET /v1/models`` (and ``/health``): the one model it serves;
* ``POST /v1/chat/completions`` and ``/v1/completions``, whole or ``"stream": true`` (SSE over chunked transfer
  encoding, one event per token, the finish chunk, a usage chunk when ``stream_options.include_usage``, then
  ``[DONE]``, as vLLM sends them). The answer has ``max_tokens`` tokens (default ``--tokens``).

    python loadtests/fast_fake_upstream.py --port 8001 [--model fake] [--tokens 16] [--token-delay-ms 0]

With ``--token-delay-ms 0`` a stream is written at once (still one event per token); otherwise each token waits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from functools import lru_cache
from typing import Any

import httptools
import orjson

TOKEN = "tok "
PROMPT_TOKENS = 5


class Answers:
    """The bytes of every answer shape, built once."""

    def __init__(self, model: str, tokens: int) -> None:
        self.model = model
        self.tokens = tokens
        listing = {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "fake"}]}
        self.models = _response(200, orjson.dumps(listing))
        self.health = _response(200, b'{"status":"ok"}')
        self.not_found = _response(404, b'{"error":{"message":"not found","type":"invalid_request_error"}}')
        self.bad = _response(400, b'{"error":{"message":"bad request","type":"invalid_request_error"}}')

    @lru_cache(maxsize=256)  # noqa: B019 - one instance per process
    def whole(self, chat: bool, n: int) -> bytes:
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": n, "total_tokens": PROMPT_TOKENS + n}
        choice: dict[str, Any] = {"index": 0, "finish_reason": "length", "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": TOKEN * n}
        else:
            choice["text"] = TOKEN * n
        kind = "chat.completion" if chat else "text_completion"
        body = {"id": "fake-1", "object": kind, "created": 0, "model": self.model, "choices": [choice], "usage": usage}
        return _response(200, orjson.dumps(body))

    @lru_cache(maxsize=256)  # noqa: B019
    def stream(self, chat: bool, n: int, usage: bool) -> tuple[bytes, list[bytes], bytes]:
        """The head, one chunk per token, and the tail (finish, usage, [DONE], end of body)."""
        kind = "chat.completion.chunk" if chat else "text_completion"
        base = {"id": "fake-1", "object": kind, "created": 0, "model": self.model}

        def event(choice: dict[str, Any] | None, **extra: Any) -> bytes:
            body = {**base, "choices": [choice] if choice else [], **extra}
            return _chunk(b"data: " + orjson.dumps(body) + b"\n\n")

        def piece(text: str, finish: str | None = None) -> dict[str, Any]:
            if chat:
                return {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
            return {"index": 0, "text": text, "finish_reason": finish}

        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        tokens = [event(piece(TOKEN)) for _ in range(n)]
        if chat:
            tokens.insert(0, event({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}))
        tail = event(piece("", "length"))
        if usage:
            counts = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": n, "total_tokens": PROMPT_TOKENS + n}
            tail += event(None, usage=counts)
        tail += _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
        return head, tokens, tail


def _response(status: int, body: bytes) -> bytes:
    reason = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}[status]
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n" % (status, reason)
    return head + b"content-length: %d\r\n\r\n" % len(body) + body


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class FakeProtocol(asyncio.Protocol):
    """One connection: parse requests with httptools, answer in order (keep-alive)."""

    def __init__(self, answers: Answers, delay: float) -> None:
        self.answers = answers
        self.delay = delay
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.busy: asyncio.Task[None] | None = None  # a delayed stream being written; later answers wait for it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP transport (uvloop's is no asyncio.Transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy is not None:
            self.busy.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        path = self.url.split(b"?", 1)[0]
        method = self.parser.get_method()
        answers = self.answers
        if method == b"GET":
            if path.endswith(b"/models"):
                self.write(answers.models)
            elif path == b"/health":
                self.write(answers.health)
            else:
                self.write(answers.not_found)
            return
        chat = path.endswith(b"/chat/completions")
        if not (chat or path.endswith(b"/completions")):
            self.write(answers.not_found)
            return
        try:
            request = orjson.loads(b"".join(self.body))
            n = int(request.get("max_tokens") or answers.tokens)
        except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
            self.write(answers.bad)
            return
        if not request.get("stream"):
            self.write(answers.whole(chat, n))
            return
        usage = bool((request.get("stream_options") or {}).get("include_usage"))
        head, tokens, tail = answers.stream(chat, n, usage)
        if self.delay <= 0 and self.busy is None:
            self.write(head)
            for token in tokens:
                self.write(token)
            self.write(tail)
            return
        self.busy = asyncio.get_running_loop().create_task(self.slow(self.busy, head, tokens, tail))

    async def slow(self, before: asyncio.Task[None] | None, head: bytes, tokens: list[bytes], tail: bytes) -> None:
        if before is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await before
        self.write(head)
        for token in tokens:
            await asyncio.sleep(self.delay)
            self.write(token)
        self.write(tail)
        if self.busy is asyncio.current_task():
            self.busy = None

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)


async def serve(host: str, port: int, model: str, tokens: int, delay_ms: float) -> None:
    answers = Answers(model, tokens)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FakeProtocol(answers, delay_ms / 1000), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="fake")
    parser.add_argument("--tokens", type=int, default=16, help="tokens per answer when the request sets no max_tokens")
    parser.add_argument("--token-delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    main_task = serve(args.host, args.port, args.model, args.tokens, args.token_delay_ms)
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:
            asyncio.run(main_task)
        else:
            uvloop.run(main_task)


if __name__ == "__main__":
    main()
