"""Engine for an OpenAI-compatible upstream: vLLM's ``vllm serve``, or ``guardserve engine``, or anything alike.

One pooled ``httpx.AsyncClient`` per upstream with explicit connect/read timeouts. Streams pass through token
by token (we re-parse the upstream's SSE into :class:`Delta` events). Cancellation is the abort signal: when the
caller stops (client disconnected), the in-flight HTTP request is closed at once, which is how vLLM learns to
abort the sequence and free its KV cache. Upstream failures, including a reply or stream event of the wrong shape,
are mapped onto the :class:`EngineError` family. A stream is read to the end of its body, so its connection is
reused by the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from models.engine import (
    Completion,
    Delta,
    EngineError,
    EngineHealth,
    EngineTimeoutError,
    EngineUnavailableError,
    FinishReason,
    GenerationRequest,
    InvalidRequestError,
    UpstreamError,
    UpstreamUnreachableError,
)
from models.unicode import loads_valid, valid_unicode

_DRAIN_SECONDS = 1.0  # how long to wait for the end of a stream's body after [DONE]

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
}


@dataclass(frozen=True)
class HTTPEngineConfig:
    connect_timeout: float = 3.0
    read_timeout: float = 300.0  # between two bytes from the upstream, not for the whole answer
    max_connections: int = 512
    health_timeout: float = 2.0
    health_ttl: float = 2.0  # seconds a health result is reused


class OpenAIHTTPEngine:
    def __init__(
        self,
        name: str,
        base_url: str,
        upstream_model: str,
        config: HTTPEngineConfig | None = None,
        api_key_env: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.upstream_model = upstream_model
        self._config = config or HTTPEngineConfig()
        headers = {}
        if api_key_env and os.environ.get(api_key_env):
            headers["Authorization"] = f"Bearer {os.environ[api_key_env]}"
        cfg = self._config
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(
                connect=cfg.connect_timeout, read=cfg.read_timeout, write=30.0, pool=cfg.connect_timeout
            ),
            limits=httpx.Limits(max_connections=cfg.max_connections, max_keepalive_connections=cfg.max_connections),
            transport=transport,
        )
        self._inflight = 0
        self._health: tuple[float, EngineHealth] | None = None

    @property
    def inflight(self) -> int:
        return self._inflight

    # --- Engine protocol ------------------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> Completion:
        path, body = self._payload(request, stream=False)
        self._inflight += 1
        try:
            with _mapped_transport_errors():
                response = await self._client.post(path, json=body)
        finally:
            self._inflight -= 1
        if response.status_code >= 400:
            raise _error_from_response(response.status_code, response.headers, response.content)
        try:
            data = response.json()
        except ValueError as exc:
            raise UpstreamError("upstream sent an unreadable completion: not JSON") from exc
        data = _object(data, "completion")
        choices = _field(data, "choices", list, "completion")
        if not choices:
            raise UpstreamError("upstream sent a malformed completion: no choices")
        choice = _object(choices[0], "completion choice")
        if request.messages is not None:
            message = _object(choice.get("message"), "completion message")
            text = _text(message, "content", "completion message")
        else:
            text = _text(choice, "text", "completion choice")
        prompt_tokens, completion_tokens = _usage(data, 0, 0)
        return Completion(
            text=text or "",
            finish_reason=_finish_reason(_text(choice, "finish_reason", "completion choice")),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        path, body = self._payload(request, stream=True)
        is_chat = request.messages is not None
        self._inflight += 1
        try:
            with _mapped_transport_errors():
                async with self._client.stream("POST", path, json=body) as response:
                    if response.status_code >= 400:
                        raise _error_from_response(response.status_code, response.headers, await response.aread())
                    yield Delta(text="", prompt_tokens=0, completion_tokens=0)
                    # closed explicitly while the response is still open: the parser drains the body then
                    async with contextlib.aclosing(_parse_sse(response, is_chat)) as deltas:
                        async for delta in deltas:
                            yield delta
        finally:
            self._inflight -= 1

    # --- pass-through: OpenAI bodies as the upstream serves them (the gateway rewrites only what guards change) ---

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` (e.g. ``/chat/completions``) and return the upstream's JSON object as is.

        An error status, a transport failure or a body that is not a JSON object raises the mapped
        :class:`EngineError`; ``model`` is the caller's to set."""
        self._inflight += 1
        try:
            with _mapped_transport_errors():
                response = await self._client.post(path, json=body)
        finally:
            self._inflight -= 1
        if response.status_code >= 400:
            raise _error_from_response(response.status_code, response.headers, response.content)
        try:
            return _object(loads_valid(response.content), "response")
        except ValueError as exc:
            raise UpstreamError("upstream sent an unreadable response: not JSON") from exc

    async def post_stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """POST a streaming ``body``; yield each SSE event's JSON object until ``[DONE]``.

        The status is checked before anything is yielded (an error status raises the mapped error). An ``error``
        event raises it mapped; an event that is not a JSON object is an :class:`UpstreamError`. Closing the
        generator after ``[DONE]`` drains the body (the connection is reused); closing it earlier, or cancelling,
        closes the connection, which is how the upstream learns to abort. After ``[DONE]`` the generator ends at once;
        the rest of the body is read in the background (bounded), so the connection goes back to the pool without
        delaying the end of the answer."""
        self._inflight += 1
        response: httpx.Response | None = None
        try:
            with _mapped_transport_errors():
                request = self._client.build_request("POST", path, json=body)
                response = await self._client.send(request, stream=True)
                if response.status_code >= 400:
                    raise _error_from_response(response.status_code, response.headers, await response.aread())
                lines = response.aiter_lines()
                async for line in lines:
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        task = asyncio.create_task(_drain_and_close(response, lines))
                        _background.add(task)
                        task.add_done_callback(_background.discard)
                        response = None
                        return
                    try:
                        event = _object(loads_valid(data), "stream event")
                    except ValueError as exc:
                        raise UpstreamError("upstream sent a malformed stream event: not JSON") from exc
                    if "error" in event:
                        raise _error_from_body(event, status=None)
                    yield event
        finally:
            self._inflight -= 1
            if response is not None:
                await response.aclose()

    async def health(self) -> EngineHealth:
        now = time.monotonic()
        if self._health and now - self._health[0] < self._config.health_ttl:
            cached = self._health[1]
            return EngineHealth(cached.ok, cached.detail, self._inflight, cached.info)
        info: dict[str, object] = {
            "engine": "openai",
            "url": self.base_url,
            "upstream_model": self.upstream_model,
        }
        try:
            response = await self._client.get("/models", timeout=self._config.health_timeout)
            ids = [m.get("id") for m in response.json().get("data", [])] if response.status_code == 200 else []
            if response.status_code != 200:
                ok, detail = False, f"upstream /models answered {response.status_code}"
            elif self.upstream_model not in ids:
                ok, detail = False, f"upstream does not serve {self.upstream_model!r}"
            else:
                ok, detail = True, "ready"
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            ok, detail = False, f"upstream unreachable: {type(exc).__name__}"
        health = EngineHealth(ok, detail, self._inflight, info)
        self._health = (now, health)
        return health

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- helpers --------------------------------------------------------------------------------------------

    def _payload(self, request: GenerationRequest, *, stream: bool) -> tuple[str, dict[str, Any]]:
        s = request.sampling
        body: dict[str, Any] = {"model": self.upstream_model, "stream": stream}
        # only what the client set: an unset temperature/top_p is the upstream's to choose (vLLM: the model's
        # generation config)
        if s.temperature is not None:
            body["temperature"] = s.temperature
        if s.top_p is not None:
            body["top_p"] = s.top_p
        if s.max_tokens is not None:
            body["max_tokens"] = s.max_tokens
        if s.stop:
            body["stop"] = list(s.stop)
        if s.seed is not None:
            body["seed"] = s.seed
        if s.presence_penalty:
            body["presence_penalty"] = s.presence_penalty
        if s.frequency_penalty:
            body["frequency_penalty"] = s.frequency_penalty
        if s.ignore_eos:
            body["ignore_eos"] = True  # vLLM extension
        if stream:
            body["stream_options"] = {"include_usage": True}
        if request.messages is not None:
            body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
            return "/chat/completions", body
        body["prompt"] = request.prompt
        return "/completions", body


@contextlib.contextmanager
def _mapped_transport_errors() -> Any:
    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise UpstreamUnreachableError(f"upstream unreachable ({type(exc).__name__})", retry_after=2) from exc
    except httpx.PoolTimeout as exc:
        raise EngineUnavailableError(f"upstream connections all busy ({type(exc).__name__})", retry_after=2) from exc
    except httpx.TimeoutException as exc:
        raise EngineTimeoutError(f"upstream timed out ({type(exc).__name__})") from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(f"upstream connection failed ({type(exc).__name__})") from exc


async def _parse_sse(response: httpx.Response, is_chat: bool) -> AsyncGenerator[Delta, None]:
    """Turn the upstream's SSE lines into deltas. The finish event waits for the usage chunk that follows it.

    Every event's shape is checked (a malformed one is an :class:`UpstreamError`, as for a whole completion). After
    ``[DONE]`` the body is read to its end, so the connection goes back to the pool instead of being discarded; that
    happens once the finish delta has been handed on (when the caller closes this generator), so an upstream slow to
    end its body never delays the end of the answer.
    """
    prompt_tokens = completion_tokens = 0
    finish: FinishReason | None = None
    done = False
    lines = response.aiter_lines()
    async for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise UpstreamError("upstream sent a malformed stream event: not JSON") from exc
        event = _object(event, "stream event")
        if "error" in event:
            raise _error_from_body(event, status=None)
        has_usage = bool(event.get("usage"))
        prompt_tokens, completion_tokens = _usage(event, prompt_tokens, completion_tokens)
        for choice in _field(event, "choices", list, "stream event"):
            choice = _object(choice, "stream choice")
            if is_chat:
                text = _text(_field(choice, "delta", dict, "stream choice"), "content", "stream delta")
            else:
                text = _text(choice, "text", "stream choice")
            if not has_usage:
                completion_tokens += 1 if text else 0
            if text:
                yield Delta(text=text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
            reason = _text(choice, "finish_reason", "stream choice")
            if reason:
                finish = _finish_reason(reason)
    if finish is None:
        raise UpstreamError("upstream stream ended without a finish reason")
    try:
        yield Delta(text="", prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, finish_reason=finish)
    finally:
        if done:
            await _drain(lines)


_background: set[asyncio.Task[None]] = set()  # drains running after [DONE] (kept referenced until they end)


async def _drain_and_close(response: httpx.Response, lines: AsyncIterator[str]) -> None:
    try:
        await _drain(lines)
    finally:
        await response.aclose()


async def _drain(lines: AsyncIterator[str]) -> None:
    """Read what follows ``[DONE]`` (normally just the end of the body), for a bounded time: a fully read response
    returns its connection to the pool. An upstream that keeps the body open, or fails after ``[DONE]``, is left (the
    answer is complete); its connection is closed instead."""
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _ in lines:
                pass


# --- the upstream's JSON shapes: anything else is an UpstreamError, never a TypeError further down -------------


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UpstreamError(f"upstream sent a malformed {what}: not an object")
    return value


def _field(container: dict[str, Any], name: str, kind: type[list[Any]] | type[dict[str, Any]], what: str) -> Any:
    """An optional list or object field (absent or null: empty); any other type is malformed."""
    value = container.get(name)
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise UpstreamError(
            f"upstream sent a malformed {what}: '{name}' is not {'a list' if kind is list else 'an object'}"
        )
    return value


def _text(container: dict[str, Any], name: str, what: str) -> str | None:
    """A string field; a lone surrogate (JSON lets an upstream escape one, ``"\\ud800"``) becomes U+FFFD, as
    in any UTF-8 decoder, so the guards and the response encoder only ever see valid Unicode."""
    value = container.get(name)
    if value is not None and not isinstance(value, str):
        raise UpstreamError(f"upstream sent a malformed {what}: '{name}' is not a string")
    return valid_unicode(value) if value else value


def _usage(event: dict[str, Any], prompt_tokens: int, completion_tokens: int) -> tuple[int, int]:
    """The token counts of an event's ``usage`` (the given ones where it has none)."""
    usage = _field(event, "usage", dict, "usage")
    return _count(usage, "prompt_tokens", prompt_tokens), _count(usage, "completion_tokens", completion_tokens)


def _count(usage: dict[str, Any], name: str, default: int) -> int:
    value = usage.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UpstreamError(f"upstream sent a malformed usage: '{name}' is not a token count")
    return value


def _finish_reason(value: object) -> FinishReason:
    return _FINISH_REASONS.get(str(value), "stop")


def _error_from_response(status: int, headers: httpx.Headers, content: bytes) -> EngineError:
    try:
        body = json.loads(content)
    except ValueError:
        body = {"message": content[:300].decode("utf-8", "replace")}
    if status in (429, 503):
        retry = headers.get("retry-after", "1")
        message = _message(body)
        return EngineUnavailableError(
            f"upstream busy ({status}): {message}", retry_after=float(retry) if retry.isdigit() else 1.0
        )
    return _error_from_body(body, status=status)


def _error_from_body(body: Any, status: int | None) -> EngineError:
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else (body if isinstance(body, dict) else {})
    message = _message(body)
    if status in (400, 413, 422) or (status is None and error.get("type") == "invalid_request_error"):
        return InvalidRequestError(
            message,
            param=error.get("param") if isinstance(error.get("param"), str) else None,
            code=error.get("code") if isinstance(error.get("code"), str) else None,
            status=413 if status == 413 else 400,
        )
    if status in (408, 504):
        return EngineTimeoutError(f"upstream timed out: {message}")
    where = f"upstream returned {status}" if status else "upstream stream failed"
    return UpstreamError(f"{where}: {message}", upstream_status=status)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if body.get("message"):
            return str(body["message"])
    return "no details"
