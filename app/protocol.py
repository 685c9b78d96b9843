"""Request and response models mirroring the OpenAI API (chat completions, completions, models).

Requests are validated strictly (a string where a number belongs is a 400, as with OpenAI). Unknown fields are
ignored, as most OpenAI-compatible servers do, but known options we do not implement are refused explicitly in
:meth:`ChatCompletionRequest.unsupported` rather than silently dropped. Every request body (:class:`RequestBody`,
the admin API's too) refuses text that is not valid Unicode: JSON may carry a lone surrogate (``"\\ud800"``), which
no guard, store or encoder can handle, so it is a 400 naming the field rather than a failure further on.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from guardserve.models.unicode import LONE_SURROGATE

# --- requests -------------------------------------------------------------------------------------------------


def invalid_unicode_at(value: object) -> int | None:
    """Position of the first lone surrogate in a string (or in the strings of a list/dict, depth first), or None."""
    if isinstance(value, str):
        found = LONE_SURROGATE.search(value)
        return found.start() if found else None
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list | tuple):
        for item in value:
            at = invalid_unicode_at(item)
            if at is not None:
                return at
    return None


# Validation context for a body orjson parsed: orjson refuses lone surrogates, so the check below has nothing to find
# (app/routers/json_route.py passes it).
STRICT_JSON: dict[str, bool] = {"strict_json": True}


class RequestBody(BaseModel):
    """Base of every request body: its text fields must be valid Unicode (nested bodies check their own)."""

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode(cls, value: object, info: ValidationInfo) -> object:
        if info.context is not None and info.context.get("strict_json"):  # STRICT_JSON
            return value
        if invalid_unicode_at(value) is not None:
            raise ValueError("text must be valid Unicode (it holds a lone surrogate code point)")
        return value


class _Request(RequestBody):
    model_config = ConfigDict(strict=True, extra="ignore")


class TextPart(_Request):
    type: Literal["text"]
    text: str


MEDIA_PARTS = {"image_url": "images", "video_url": "images", "input_audio": "audio", "audio_url": "audio"}
MediaType = Literal["image_url", "video_url", "input_audio", "audio_url", "file"]


class MediaPart(_Request):
    """An image, audio or file part: forwarded to an upstream that reads them; the guards see only text parts."""

    model_config = ConfigDict(strict=True, extra="allow")
    type: MediaType

    @property
    def feature(self) -> str:
        return MEDIA_PARTS.get(self.type, "files")


class ToolCallFunction(_Request):
    name: str = Field(min_length=1, max_length=256)
    arguments: str


class ToolCall(_Request):
    id: str = Field(max_length=256)
    type: Literal["function"] = "function"
    function: ToolCallFunction


class ChatMessageParam(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart | MediaPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None  # an assistant's earlier calls
    tool_call_id: str | None = Field(None, max_length=256)  # role "tool": which call this is the result of

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    def features(self) -> list[tuple[str, str]]:
        """(feature, param) for what in this message needs more than a text model."""
        found = []
        if self.role == "tool" or self.tool_calls:
            found.append(("tools", "messages"))
        if isinstance(self.content, list):
            found += [(part.feature, "messages") for part in self.content if isinstance(part, MediaPart)]
        return found


class StreamOptions(_Request):
    include_usage: bool = False


class GuardrailsOptions(_Request):
    policy: str | None = Field(None, min_length=1, max_length=64)


class _SamplingFields(_Request):
    model: str = Field(min_length=1, max_length=256)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=128)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, max_length=256)
    logprobs: bool | int | None = None  # chat: a bool; completions: how many alternatives
    logit_bias: dict[str, float] | None = None
    ignore_eos: bool = False  # vLLM extension: keep generating past end-of-sequence (benchmarks, tests)
    guardrails: GuardrailsOptions | None = None  # extension: ask for a stricter guardrails policy

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def requested_policy(self) -> str | None:
        return self.guardrails.policy if self.guardrails is not None else None

    @field_validator("stop")
    @classmethod
    def _stop_strings(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and any(not s for s in value):
            raise ValueError("stop sequences must be non-empty strings")
        return value

    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def features(self) -> list[tuple[str, str]]:
        """(feature, param) for each option this request uses that a plain text engine lacks (see
        :data:`guardserve.models.registry.FEATURES`); an engine without one refuses the request naming the param."""
        found = []
        if self.n != 1:
            found.append(("n", "n"))
        if self.logprobs:
            found.append(("logprobs", "logprobs"))
        if self.logit_bias:
            found.append(("logit_bias", "logit_bias"))
        return found

    def misuse(self) -> tuple[str, str] | None:
        """(param, reason) for options that contradict each other, whatever the engine."""
        if self.stream_options is not None and not self.stream:
            return "stream_options", "stream_options is only allowed when stream is true."
        return None


class ChatCompletionRequest(_SamplingFields):
    messages: list[ChatMessageParam] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: list[dict[str, object]] | None = None
    tool_choice: str | dict[str, object] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, object] | None = None

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def features(self) -> list[tuple[str, str]]:
        found = super().features()
        if self.tools:
            found.append(("tools", "tools"))
        if self.tool_choice not in (None, "none"):
            found.append(("tools", "tool_choice"))
        if self.top_logprobs:
            found.append(("logprobs", "top_logprobs"))
        if self.response_format is not None and self.response_format.get("type") not in (None, "text"):
            found.append(("response_format", "response_format"))
        for message in self.messages:
            found += message.features()
        return found


class CompletionRequest(_SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]]  # text, texts, or token ids (pass-through only)
    max_tokens: int | None = Field(16, ge=1)
    echo: bool = False
    best_of: int | None = Field(None, ge=1)
    suffix: str | None = None

    def prompt_text(self) -> str:
        """The one text prompt (engines without ``prompt_lists``/``token_prompts`` refuse the others first)."""
        if isinstance(self.prompt, str):
            return self.prompt
        first = self.prompt[0] if self.prompt else ""
        return first if isinstance(first, str) else ""

    def token_prompt(self) -> bool:
        return isinstance(self.prompt, list) and any(not isinstance(p, str) for p in self.prompt)

    def features(self) -> list[tuple[str, str]]:
        found = super().features()
        if self.token_prompt():
            found.append(("token_prompts", "prompt"))
        elif isinstance(self.prompt, list) and len(self.prompt) != 1:
            found.append(("prompt_lists", "prompt"))
        if self.best_of not in (None, 1):
            found.append(("n", "best_of"))
        if self.suffix:
            found.append(("suffix", "suffix"))
        return found


class EmbeddingRequest(_Request):
    """``/v1/embeddings``: served by an upstream that has it (the PII guard screens text inputs first)."""

    model: str = Field(min_length=1, max_length=256)
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(None, ge=1)
    user: str | None = Field(None, max_length=256)

    def texts(self) -> list[str]:
        if isinstance(self.input, str):
            return [self.input]
        return [item for item in self.input if isinstance(item, str)]

    def token_input(self) -> bool:
        return isinstance(self.input, list) and any(not isinstance(item, str) for item in self.input)


class ModerationRequest(_Request):
    input: str | list[str]
    model: str | None = Field(None, max_length=256)

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


# --- responses ------------------------------------------------------------------------------------------------


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None


FinishReasonField = Literal["stop", "length", "content_filter"]


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: FinishReasonField


Explanation = dict[str, Any]  # what the guardrails did: {"policy", "input": [...], "output": [...]}


def _explanation_field() -> Any:
    return Field(None, exclude_if=lambda v: v is None)


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None
    guardrails: Explanation | None = _explanation_field()


class ChoiceDelta(BaseModel):
    # OpenAI sends the role only in the first chunk and no content in the last: leave absent fields out.
    role: Literal["assistant"] | None = Field(None, exclude_if=lambda v: v is None)
    content: str | None = Field(None, exclude_if=lambda v: v is None)


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: ChoiceDelta
    logprobs: None = None
    finish_reason: FinishReasonField | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
    guardrails: Explanation | None = _explanation_field()


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    logprobs: None = None
    finish_reason: FinishReasonField | None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
    guardrails: Explanation | None = _explanation_field()


class ModelVersion(BaseModel):
    label: str  # "stable", or the registry's label
    traffic_percent: float  # its share of the model's requests (sticky per user or API key)


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "guardserve"
    # extensions (the openai client keeps unknown fields)
    engine: str
    context_length: int
    trained: bool
    description: str = ""
    features: list[str] = Field(default_factory=list)  # what it serves beyond text chat (models.registry.FEATURES)
    versions: list[ModelVersion] = Field(default_factory=list)  # the stable version and a candidate (app.rollout)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


MODERATION_CATEGORIES = ("toxicity", "pii", "prompt_injection")


class ModerationResult(BaseModel):
    flagged: bool
    categories: dict[str, bool]
    category_scores: dict[str, float]


class Moderation(BaseModel):
    id: str
    model: str
    results: list[ModerationResult]


# --- errors ---------------------------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    """Every error, as OpenAI sends it (``app.errors.APIError``); the OpenAPI schema documents it for each route."""

    error: ErrorDetail
