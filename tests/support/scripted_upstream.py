"""A scripted OpenAI-compatible upstream (pure ASGI) that sends exactly the bytes a test chose, well-formed or not.

The last user message (chat) or the prompt (completions) names the script. A streamed script is the list of
``data:`` payloads sent as SSE events, each in its own body chunk; a whole script is the raw JSON body. Unknown
names get a good answer ("ok"). Every generation request records the client address (host, port) it came from,
so a test can count the upstream connections the gateway opened.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from tests.support.asgi import lifespan, read_body

USAGE = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}


def chat_event(content: str | None = None, finish_reason: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    return orjson.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})


def text_event(text: str = "", finish_reason: str | None = None) -> bytes:
    return orjson.dumps({"choices": [{"index": 0, "text": text, "finish_reason": finish_reason}]})


def good_stream(chat: bool) -> list[bytes]:
    events = [chat_event("ok"), chat_event(None, "stop")] if chat else [text_event("ok"), text_event("", "stop")]
    return [*events, orjson.dumps({"choices": [], "usage": USAGE}), b"[DONE]"]


class ScriptedUpstream:
    def __init__(
        self,
        name: str,
        streams: dict[str, list[bytes]] | None = None,
        wholes: dict[str, bytes] | None = None,
        hold_open: frozenset[str] = frozenset(),
    ) -> None:
        self.name = name
        self.streams = streams or {}
        self.wholes = wholes or {}
        self.hold_open = hold_open  # scripts whose body stays open after their last event, until the client leaves
        self.clients: list[tuple[str, int]] = []
        self.left: list[float] = []  # when the gateway gave up a held-open body (time.monotonic)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        body = await read_body(receive)
        if scope["path"].endswith("/models"):
            await _send_json(send, orjson.dumps({"object": "list", "data": [{"id": self.name, "object": "model"}]}))
            return
        self.clients.append(tuple(scope["client"]))
        request: dict[str, Any] = orjson.loads(body)
        chat = scope["path"].endswith("/chat/completions")
        script = request["messages"][-1]["content"] if chat else request["prompt"]
        if not request.get("stream"):
            await _send_json(send, self.wholes.get(script) or _good_whole(chat))
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for event in self.streams.get(script) or good_stream(chat):
            await send({"type": "http.response.body", "body": b"data: " + event + b"\n\n", "more_body": True})
            await asyncio.sleep(0)
        if script in self.hold_open:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.left.append(time.monotonic())
            return
        await send({"type": "http.response.body", "body": b""})


def _good_whole(chat: bool) -> bytes:
    choice = {"index": 0, "finish_reason": "stop"}
    choice |= {"message": {"role": "assistant", "content": "ok"}} if chat else {"text": "ok"}
    return orjson.dumps({"id": "x", "object": "completion", "choices": [choice], "usage": USAGE})


async def _send_json(send: Send, data: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data})
