"""A fake OpenAI-compatible upstream (pure ASGI) that implements what vLLM serves beyond text chat, and records
every body it receives so a test can check what the gateway forwarded, field by field.

What it answers (deterministic, so tests can assert on it):

* the reply echoes the last user (or tool) text, ``ok`` when there is none; the word ``MADEUP`` in it becomes
  :data:`SAID_EMAIL`, an address the "model" made up (the user's own come back restored by pseudonymization);
  with image parts it is ``saw N images``; in JSON mode (``response_format`` json_object or json_schema) it is
  ``{"answer": <reply>}``;
* ``tools`` (and ``tool_choice`` not ``none``): one call of the first tool, arguments ``{"text": <reply>}``,
  ``finish_reason`` ``tool_calls``;
* ``n`` choices, choice i's text prefixed ``[i] `` when n > 1;
* ``logprobs`` (+ ``top_logprobs``): one entry per word;
* streams send the text word by word (interleaving choices), tool-call arguments in 5-character fragments, the
  finish events, a usage chunk when ``stream_options.include_usage``, then ``[DONE]``;
* ``/v1/completions`` (a prompt or a list of them; ``n``; ``logprobs`` as the legacy object; ``echo``) and
  ``/v1/embeddings`` (vector ``[len(text), i]`` per input).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from tests.support.asgi import lifespan, read_body

SAID_EMAIL = "carol.white@example.net"


class OpenAIUpstream:
    def __init__(self, name: str) -> None:
        self.name = name
        self.received: list[tuple[str, dict[str, Any]]] = []  # (path, body) in arrival order

    def last(self, path: str) -> dict[str, Any]:
        return next(body for p, body in reversed(self.received) if p.endswith(path))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        raw = await read_body(receive)
        path = scope["path"]
        if path.endswith("/models"):
            await _json(send, {"object": "list", "data": [{"id": self.name, "object": "model"}]})
            return
        body: dict[str, Any] = orjson.loads(raw)
        self.received.append((path, body))
        if path.endswith("/embeddings"):
            await _json(send, _embeddings(body))
        elif path.endswith("/chat/completions"):
            choices = _chat_choices(body)
            await (
                _stream(send, body, choices, chat=True) if body.get("stream") else _json(send, _whole(body, choices))
            )
        else:
            choices = _text_choices(body)
            await (
                _stream(send, body, choices, chat=False) if body.get("stream") else _json(send, _whole(body, choices))
            )


# --- what the "model" says --------------------------------------------------------------------------------------


def _reply(messages: list[dict[str, Any]]) -> str:
    user = next((m for m in reversed(messages) if m.get("role") in ("user", "tool")), {})
    content = user.get("content")
    parts = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
    images = sum(1 for p in parts if p.get("type") == "image_url")
    if images:
        return f"saw {images} images"
    text = " ".join(p.get("text", "") for p in parts if p.get("type") == "text")
    return text.strip().replace("MADEUP", SAID_EMAIL) or "ok"


def _chat_choices(body: dict[str, Any]) -> list[dict[str, Any]]:
    reply = _reply(body["messages"])
    if (body.get("response_format") or {}).get("type") in ("json_object", "json_schema"):
        reply = orjson.dumps({"answer": reply}).decode()
    n = body.get("n") or 1
    tools = body.get("tools") if body.get("tool_choice", "auto") != "none" else None
    choices = []
    for i in range(n):
        text = f"[{i}] {reply}" if n > 1 else reply
        if tools:
            call = {"name": tools[0]["function"]["name"], "arguments": orjson.dumps({"text": text}).decode()}
            choices.append({"index": i, "content": None, "call": call, "finish": "tool_calls"})
        else:
            choices.append({"index": i, "content": text, "call": None, "finish": "stop"})
    return choices


def _text_choices(body: dict[str, Any]) -> list[dict[str, Any]]:
    prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
    n = body.get("n") or 1
    out = []
    for p, prompt in enumerate(prompts):
        said = prompt.strip().replace("MADEUP", SAID_EMAIL) if isinstance(prompt, str) and prompt.strip() else "ok"
        for i in range(n):
            text = f"[{i}] {said}" if n > 1 else said
            if body.get("echo") and isinstance(prompt, str):
                text = prompt + text
            out.append({"index": p * n + i, "content": text, "call": None, "finish": "stop"})
    return out


def _chat_logprobs(words: list[str], top: int) -> dict[str, Any]:
    entries = []
    for w in words:
        alternatives = [{"token": w, "logprob": -0.1, "bytes": list(w.encode())}][: max(top, 0)]
        entries.append({"token": w, "logprob": -0.1, "bytes": list(w.encode()), "top_logprobs": alternatives})
    return {"content": entries, "refusal": None}


def _text_logprobs(words: list[str]) -> dict[str, Any]:
    return {
        "tokens": words,
        "token_logprobs": [-0.1] * len(words),
        "top_logprobs": [{w: -0.1} for w in words],
        "text_offset": list(range(len(words))),
    }


def _words(text: str) -> list[str]:
    pieces = text.split(" ")
    return [p + " " for p in pieces[:-1]] + [pieces[-1]]


def _usage(body: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, int]:
    completion = sum(len(_words(c["content"] or c["call"]["arguments"])) for c in choices)
    prompt = len(orjson.dumps(body.get("messages") or body.get("prompt"))) // 4
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _whole(body: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, Any]:
    chat = "messages" in body
    out = []
    for c in choices:
        text = c["content"]
        logprobs = None
        if body.get("logprobs") and text is not None:
            logprobs = (
                _chat_logprobs(_words(text), body.get("top_logprobs") or 0) if chat else _text_logprobs(_words(text))
            )
        if chat:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if c["call"]:
                message["tool_calls"] = [{"id": f"call_{c['index']}", "type": "function", "function": c["call"]}]
            out.append({"index": c["index"], "message": message, "logprobs": logprobs, "finish_reason": c["finish"]})
        else:
            out.append({"index": c["index"], "text": text, "logprobs": logprobs, "finish_reason": c["finish"]})
    return {
        "id": "upstream-id",
        "object": "chat.completion" if chat else "text_completion",
        "created": 1,
        "model": body["model"],
        "choices": out,
        "usage": _usage(body, choices),
        "system_fingerprint": "fp_fake",
    }


async def _stream(send: Send, body: dict[str, Any], choices: list[dict[str, Any]], chat: bool) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    kind = "chat.completion.chunk" if chat else "text_completion"

    async def emit(chunk_choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> None:
        event = {"id": "upstream-id", "object": kind, "created": 1, "model": body["model"], "choices": chunk_choices}
        if usage is not None:
            event["usage"] = usage
        await send({"type": "http.response.body", "body": b"data: " + orjson.dumps(event) + b"\n\n", "more_body": True})
        await asyncio.sleep(0)

    if chat:
        await emit([{"index": c["index"], "delta": {"role": "assistant", "content": ""}} for c in choices])
    pieces = {c["index"]: _pieces(c) for c in choices}
    for step in range(max(len(p) for p in pieces.values())):
        batch = []
        for c in choices:
            if step < len(pieces[c["index"]]):
                batch.append(_piece_choice(body, c, pieces[c["index"]][step], step, chat))
        await emit(batch)
    finish = [
        {"index": c["index"], "finish_reason": c["finish"], **({"delta": {}} if chat else {"text": ""})}
        for c in choices
    ]
    await emit(finish)
    if (body.get("stream_options") or {}).get("include_usage"):
        await emit([], _usage(body, choices))
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _pieces(c: dict[str, Any]) -> list[str]:
    if c["call"]:
        args = c["call"]["arguments"]
        return [args[i : i + 5] for i in range(0, len(args), 5)]
    return _words(c["content"])


def _piece_choice(body: dict[str, Any], c: dict[str, Any], piece: str, step: int, chat: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"index": c["index"], "finish_reason": None}
    if body.get("logprobs") and not c["call"]:
        out["logprobs"] = _chat_logprobs([piece], body.get("top_logprobs") or 0) if chat else _text_logprobs([piece])
    if not chat:
        out["text"] = piece
    elif c["call"]:
        call: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
        if step == 0:
            call |= {"id": f"call_{c['index']}", "type": "function"}
            call["function"]["name"] = c["call"]["name"]
        out["delta"] = {"tool_calls": [call]}
    else:
        out["delta"] = {"content": piece}
    return out


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    data = [
        {"object": "embedding", "index": i, "embedding": [float(len(str(x))), float(i)]} for i, x in enumerate(inputs)
    ]
    tokens = sum(len(str(x)) // 4 + 1 for x in inputs)
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


async def _json(send: Send, payload: dict[str, Any]) -> None:
    data = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data})
