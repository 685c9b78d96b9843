"""Engine for an OpenAI-compatible upstream: vLLM's ``vllm serve``, or ``guardserve engine``, or anything alike.

One pooled ``aiohttp.ClientSession`` per upstream (created lazily, inside the running loop) with explicit
connect/read timeouts: ``read_timeout`` bounds the wait between two bytes, never the whole answer. (httpx's pool
cost 1.3-2.5 ms of CPU per call in the gateway benchmark; aiohttp about 0.2 ms.) Streams pass through event by
event, framed by :mod:`models.sse`. Cancellation is the abort signal: when the caller stops (client disconnected),
the in-flight response's connection is closed at once, which is how vLLM learns to abort the sequence and free its
KV cache. Upstream failures, including a reply or stream event of the wrong shape, are mapped onto the
:class:`EngineError` family. A stream is read to the end of its body after ``[DONE]`` (for a bounded time), so its
connection is reused by the next request.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import aiohttp
import orjson
import yarl
from pydantic import BaseModel, ConfigDict, Field

from guardserve.models.breaker import BreakerConfig
from guardserve.models.engine import (
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
from guardserve.models.sse import Event, SSEDecoder
from guardserve.models.unicode import loads_valid, valid_unicode

_DRAIN_SECONDS = 1.0  # how long to wait for the end of a stream's body after [DONE]

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
}


class HTTPEngineConfig(BaseModel):
    """The engine's settings; also the gateway's ``GUARDSERVE_HTTP__*`` (``guardserve.app.settings.Settings.http``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # as a settings section: unknown keys ignored

    connect_timeout: float = Field(3.0, gt=0)  # getting a connection: waiting for the pool and connecting
    read_timeout: float = Field(300.0, gt=0)  # between two bytes from the upstream, not for the whole answer
    # between two stream events: keep-alive comments and partial events do not count, so an upstream that only
    # sends keep-alives (a stuck proxy, a wedged server) cannot hold a stream open forever
    event_timeout: float = Field(300.0, gt=0)
    max_connections: int = Field(512, ge=1)
    health_timeout: float = Field(2.0, gt=0)
    health_ttl: float = Field(2.0, ge=0)  # seconds a health result is reused
    # An idle pooled connection is closed after this long: below the upstream's own keep-alive timeout (uvicorn's,
    # and so vLLM's, is 5 s), so a request is never written onto a connection the upstream is just closing.
    keepalive_timeout: float = Field(4.0, gt=0)
    # circuit breaker per upstream (models/breaker.py): opens after this many connection failures in a row and
    # lets one probe through after the cooldown (a healthy health check closes it too)
    breaker_failures: int = Field(3, ge=1)
    breaker_cooldown: float = Field(2.0, gt=0)

    def breaker_config(self) -> BreakerConfig:
        return BreakerConfig(failures=self.breaker_failures, cooldown=self.breaker_cooldown)


class OpenAIHTTPEngine:
    def __init__(
        self,
        name: str,
        base_url: str,
        upstream_model: str,
        config: HTTPEngineConfig | None = None,
        api_key_env: str | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.upstream_model = upstream_model
        self._config = config or HTTPEngineConfig()
        # identity: an upstream that compresses costs CPU on both sides for bytes that never leave the host's network
        self._headers = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
        if api_key_env and os.environ.get(api_key_env):
            self._headers["Authorization"] = f"Bearer {os.environ[api_key_env]}"
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, yarl.URL] = {}
        self._inflight = 0
        self._health: tuple[float, EngineHealth] | None = None

    @property
    def inflight(self) -> int:
        return self._inflight

    def _pool_full(self) -> bool:
        """Whether a request now may wait for a pooled connection (every one taken by the others in flight)."""
        return self._inflight > self._config.max_connections

    def _url(self, path: str) -> yarl.URL:
        """The upstream URL of ``path``, parsed once (a str would be parsed again for every request)."""
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= 64:  # pass-through paths are the caller's: keep the cache small
                self._urls.clear()
            url = self._urls[path] = yarl.URL(self.base_url + path)
        return url

    def _client(self) -> aiohttp.ClientSession:
        """The pooled session, made on first use: aiohttp binds it to the running loop."""
        if self._session is None or self._session.closed:
            cfg = self._config
            connector = aiohttp.TCPConnector(
                limit=cfg.max_connections,
                limit_per_host=0,  # one upstream: `limit` is its limit
                keepalive_timeout=cfg.keepalive_timeout,
                ttl_dns_cache=300,  # a name is resolved once per 5 minutes (an IP address never is)
                enable_cleanup_closed=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=cfg.connect_timeout,
                    sock_connect=cfg.connect_timeout,
                    sock_read=cfg.read_timeout,
                ),
                auto_decompress=True,  # we ask for identity; an upstream that compresses anyway still works
                # no skip_auto_headers: naming any sends every request down aiohttp's slow header path (~4% of the
                # gateway's CPU in bench_gateway_overhead.py)
                raise_for_status=False,
            )
        return self._session

    # --- Engine protocol ------------------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> Completion:
        path, body = self._payload(request, stream=False)
        data = await self._post_json(path, body, "completion")
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
        """Deltas from the upstream's SSE events. The finish delta waits for the usage chunk that follows it.

        Every event's shape is checked (a malformed one is an :class:`UpstreamError`, as for a whole completion).
        The rest of the body after ``[DONE]`` is read once the finish delta has been handed on (when the caller
        closes this generator), so an upstream slow to end its body never delays the end of the answer."""
        path, body = self._payload(request, stream=True)
        is_chat = request.messages is not None
        self._inflight += 1
        try:
            events = await self._open_stream(path, body)
            try:
                yield Delta(text="", prompt_tokens=0, completion_tokens=0)
                prompt_tokens = completion_tokens = 0
                finish: FinishReason | None = None
                while (event := await events.next()) is not None:
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
                yield Delta(
                    text="", prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, finish_reason=finish
                )
            finally:
                await events.finish()
        finally:
            self._inflight -= 1

    # --- pass-through: OpenAI bodies as the upstream serves them (the gateway rewrites only what guards change) ---

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` (e.g. ``/chat/completions``) and return the upstream's JSON object as is.

        An error status, a transport failure or a body that is not a JSON object raises the mapped
        :class:`EngineError`; ``model`` is the caller's to set."""
        return await self._post_json(path, body, "response")

    async def post_stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """POST a streaming ``body``; yield each SSE event's JSON object until ``[DONE]``.

        The status is checked before anything is yielded (an error status raises the mapped error). An ``error``
        event raises it mapped; an event that is not a JSON object is an :class:`UpstreamError`. Closing the
        generator after ``[DONE]`` drains the body (the connection is reused); closing it earlier, or cancelling,
        closes the connection, which is how the upstream learns to abort. After ``[DONE]`` the generator ends at once;
        the rest of the body is read in the background (bounded), so the connection goes back to the pool without
        delaying the end of the answer."""
        self._inflight += 1
        try:
            events = await self._open_stream(path, body)
            try:
                while (event := await events.next()) is not None:
                    yield event
            finally:
                events.finish_soon()
        finally:
            self._inflight -= 1

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
            timeout = aiohttp.ClientTimeout(total=self._config.health_timeout)
            async with self._client().get(self._url("/models"), timeout=timeout) as response:
                status, content = response.status, await response.read()
            ids = [m.get("id") for m in loads_valid(content).get("data", [])] if status == 200 else []
            if status != 200:
                ok, detail = False, f"upstream /models answered {status}"
            elif self.upstream_model not in ids:
                ok, detail = False, f"upstream does not serve {self.upstream_model!r}"
            else:
                ok, detail = True, "ready"
        except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError) as exc:
            ok, detail = False, f"upstream unreachable: {type(exc).__name__}"
        health = EngineHealth(ok, detail, self._inflight, info)
        self._health = (now, health)
        return health

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    # --- the wire ---------------------------------------------------------------------------------------------

    async def _post_json(self, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
        self._inflight += 1
        try:
            with _mapped_transport_errors(self._pool_full()):
                async with self._client().post(self._url(path), data=_dumps(body)) as response:
                    status, content = response.status, await response.read()
                    headers = response.headers
        finally:
            self._inflight -= 1
        if status >= 400:
            raise _error_from_response(status, headers, content)
        try:
            return _object(loads_valid(content), what)
        except ValueError as exc:
            raise UpstreamError(f"upstream sent an unreadable {what}: not JSON") from exc

    async def _open_stream(self, path: str, body: dict[str, Any]) -> _EventStream:
        """POST a streaming body and check the status (an error status raises the mapped error)."""
        with _mapped_transport_errors(self._pool_full()):
            response = await self._client().post(self._url(path), data=_dumps(body))
            if response.status >= 400:
                try:
                    content = await response.read()
                finally:
                    response.release()
                raise _error_from_response(response.status, response.headers, content)
        return _EventStream(response, self._config.event_timeout)

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


_background: set[asyncio.Task[None]] = set()  # drains running after [DONE] (kept referenced until they end)


class _EventStream:
    """An upstream's SSE response read as JSON events, then finished: drained and pooled, or closed."""

    __slots__ = ("_decoder", "_pending", "done", "eof", "event_timeout", "response")

    def __init__(self, response: aiohttp.ClientResponse, event_timeout: float) -> None:
        self.response = response
        self.event_timeout = event_timeout
        self._decoder = SSEDecoder()
        self._pending: collections.deque[Event] = collections.deque()
        self.done = False  # [DONE] came
        self.eof = False  # the body ended

    async def next(self) -> dict[str, Any] | None:
        """The next event's object; ``None`` at ``[DONE]`` or at the end of the body. An ``error`` event raises it
        mapped; anything but a JSON object is an :class:`UpstreamError`."""
        deadline = None
        while not self._pending:
            if self.done or self.eof:
                return None
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self.event_timeout
            try:
                async with asyncio.timeout_at(deadline):
                    with _mapped_transport_errors():
                        chunk = await self.response.content.readany()
            except TimeoutError:  # the deadline's (aiohttp's own read timeout is mapped inside)
                raise EngineTimeoutError(f"upstream sent no stream event for {self.event_timeout:g} s") from None
            if not chunk:
                self.eof = True
                return None
            self._pending.extend(self._decoder.feed(chunk))
        data = self._pending.popleft().data
        if data == "[DONE]":
            self.done = True
            self._pending.clear()
            return None
        try:
            event = _object(loads_valid(data), "stream event")
        except ValueError as exc:
            raise UpstreamError("upstream sent a malformed stream event: not JSON") from exc
        if "error" in event:
            raise _error_from_body(event, status=None)
        return event

    def finish_soon(self) -> None:
        """:meth:`finish` without waiting: at once where the body has ended (or must be closed), else in the
        background (the task is kept referenced until it ends)."""
        if self.done and not self.eof and not self.response.content.is_eof():
            task = asyncio.create_task(self.finish())
            _background.add(task)
            task.add_done_callback(_background.discard)
            return
        if self.done:
            self.eof = True  # the end of the body is already here: only buffered bytes are left
        (self.response.release if self.eof else self.response.close)()

    async def finish(self) -> None:
        """After ``[DONE]``, read what follows (normally just the end of the body) for a bounded time: a fully read
        response returns its connection to the pool. Otherwise (an early close, a cancel, a failure, a body held
        open) close the connection: that is how the upstream learns to stop."""
        response = self.response
        if self.done and not self.eof:
            try:
                async with asyncio.timeout(_DRAIN_SECONDS):
                    while await response.content.readany():
                        pass
                self.eof = True
            except (TimeoutError, aiohttp.ClientError):
                pass
            except BaseException:
                response.close()
                raise
        if self.eof:
            response.release()
        else:
            response.close()


@contextlib.contextmanager
def _mapped_transport_errors(pool_full: bool = False) -> Iterator[None]:
    """aiohttp's failures as engine errors. A connect timeout is unreachable (what opens the circuit breaker) unless
    ``pool_full``: aiohttp's ``connect`` timeout covers the wait for a pooled connection too, and a request that found
    every connection taken may have spent it waiting, which says nothing about the upstream."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        if pool_full:
            raise EngineUnavailableError(
                f"upstream connections all busy ({type(exc).__name__})", retry_after=2
            ) from exc
        raise UpstreamUnreachableError(f"upstream unreachable ({type(exc).__name__})", retry_after=2) from exc
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamUnreachableError(f"upstream unreachable ({type(exc).__name__})", retry_after=2) from exc
    except TimeoutError as exc:  # aiohttp.SocketTimeoutError: nothing for read_timeout seconds
        raise EngineTimeoutError(f"upstream timed out ({type(exc).__name__})") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"upstream connection failed ({type(exc).__name__})") from exc


def _dumps(body: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError:  # orjson.JSONEncodeError: e.g. a lone surrogate, which json escapes
        return json.dumps(body).encode()


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


def _error_from_response(status: int, headers: Mapping[str, str], content: bytes) -> EngineError:
    """The error an upstream's error status means (``headers``: a case-insensitive mapping, or lower-case keys)."""
    try:
        body = loads_valid(content)
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
