"""The seam between the gateway and whatever runs the model.

The gateway only ever sees :class:`Engine`. An engine takes a :class:`GenerationRequest` (chat messages or a raw
prompt plus sampling parameters) and returns text: all at once (:meth:`Engine.generate`) or as a stream of
:class:`Delta` events (:meth:`Engine.stream`). Failures are raised as the :class:`EngineError` family below;
the gateway maps them to OpenAI's error envelope. Nothing here imports torch or the web framework.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length", "content_filter"]
Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


SAMPLING_EPS = 1e-5
"""A temperature or top_p below this is greedy (top-1), as in vLLM: dividing logits by a temperature this small
overflows float32, and a top_p this small keeps only the most likely token anyway."""


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How to pick tokens. ``max_tokens=None`` means "until the context is full".

    ``temperature``/``top_p`` are ``None`` when the client did not set them: the engine decides (the HTTP engine
    leaves them to the upstream, the CPU engine applies the checkpoint's generation config, see
    :class:`SamplingDefaults`).
    """

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    ignore_eos: bool = False  # benchmarks only: generate exactly max_tokens

    @property
    def greedy(self) -> bool:
        """Always take the most likely token: a temperature of (about) zero, or a top_p so small it keeps one
        token. Unset fields are not greedy: resolve them with :meth:`SamplingDefaults.apply` first."""
        return (self.temperature is not None and self.temperature < SAMPLING_EPS) or (
            self.top_p is not None and self.top_p < SAMPLING_EPS
        )


@dataclass(frozen=True, slots=True)
class SamplingDefaults:
    """What an engine uses for the sampling fields the client left unset (e.g. a checkpoint's generation config).

    The defaults are OpenAI's (``temperature=1``, ``top_p=1``); ``temperature=0.0`` means greedy.
    """

    temperature: float = 1.0
    top_p: float = 1.0

    def apply(self, params: SamplingParams) -> SamplingParams:
        """``params`` with every unset field filled in from these defaults."""
        return replace(
            params,
            temperature=self.temperature if params.temperature is None else params.temperature,
            top_p=self.top_p if params.top_p is None else params.top_p,
        )


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation. Exactly one of ``messages`` (chat) and ``prompt`` (plain completion) is set."""

    request_id: str
    model: str
    sampling: SamplingParams
    messages: tuple[ChatMessage, ...] | None = None
    prompt: str | None = None
    user: str | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("GenerationRequest needs exactly one of messages or prompt")


@dataclass(frozen=True, slots=True)
class Delta:
    """One streamed event.

    The first event of every stream is an *admission* event: empty text, ``prompt_tokens`` known. It means the engine
    accepted the request, so the gateway can commit to a 200 response. The last event carries ``finish_reason``.
    ``completion_tokens`` is cumulative.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class EngineHealth:
    ok: bool
    detail: str
    inflight: int
    info: dict[str, object] = field(default_factory=dict)


class Engine(Protocol):
    """What the gateway needs from a model runtime."""

    async def generate(self, request: GenerationRequest) -> Completion: ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[Delta]: ...

    async def health(self) -> EngineHealth: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class PassThrough(Protocol):
    """An engine in front of an OpenAI-compatible server that also takes OpenAI request bodies as they are, so the
    gateway can forward what the upstream serves (tools, ``n``, logprobs, JSON mode, images) and screen only the
    text in them. ``path`` is the OpenAI route below ``/v1`` (``/chat/completions``, ``/completions``,
    ``/embeddings``). Failures are the :class:`EngineError` family, as for :class:`Engine`."""

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def post_stream(self, path: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]: ...


# --- failures -------------------------------------------------------------------------------------------------


class EngineError(Exception):
    """Base of every failure an engine reports. ``kind`` is a bounded label (safe for metrics)."""

    kind = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(EngineError):
    """The request cannot be served as asked (too long for the context, unsupported option)."""

    kind = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None, status: int = 400):
        super().__init__(message)
        self.param = param
        self.code = code
        self.status = status


class EngineUnavailableError(EngineError):
    """The engine cannot take work now (not loaded, upstream unreachable, queue full). Retry later."""

    kind = "unavailable"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamUnreachableError(EngineUnavailableError):
    """No connection to the upstream (refused, or the connect timed out): what opens the circuit breaker."""


class EngineTimeoutError(EngineError):
    kind = "timeout"


class UpstreamError(EngineError):
    """An upstream server answered with something we cannot pass on as a client error."""

    kind = "upstream"

    def __init__(self, message: str, *, upstream_status: int | None = None) -> None:
        super().__init__(message)
        self.upstream_status = upstream_status
