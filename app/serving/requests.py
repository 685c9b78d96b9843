"""Turn a validated OpenAI request into an engine :class:`GenerationRequest`, refusing what we cannot honour.

The size caps (:mod:`guardserve.app.serving.caps`) are checked here, first: nothing costly has run yet.
"""

from __future__ import annotations

from guardserve.app.context import RequestContext
from guardserve.app.errors import APIError
from guardserve.app.protocol import ChatCompletionRequest, CompletionRequest
from guardserve.app.serving.caps import check_messages, check_prompt_chars
from guardserve.app.settings import Settings
from guardserve.models.engine import ChatMessage, GenerationRequest, Role, SamplingParams
from guardserve.models.registry import FEATURES, ServedModel

_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}


def sampling_for(
    body: ChatCompletionRequest | CompletionRequest,
    max_tokens: int | None,
    served: ServedModel,
    settings: Settings,
) -> SamplingParams:
    check_features(body.features(), served)
    misuse = body.misuse()
    if misuse is not None:
        raise APIError(400, misuse[1], param=misuse[0], code="unsupported_parameter")
    stops = body.stop_sequences()
    if len(stops) > settings.max_stop_sequences:
        raise APIError(
            400,
            f"At most {settings.max_stop_sequences} stop sequences are allowed; got {len(stops)}.",
            param="stop",
            code="invalid_value",
        )
    if max_tokens is not None and max_tokens >= served.context_length:
        raise APIError(
            400,
            f"max_tokens is too large: {max_tokens}. Model {served.name!r} has a context of "
            f"{served.context_length} tokens, which must hold the prompt too.",
            param="max_tokens",
            code="invalid_value",
        )
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=body.temperature,  # None (unset): the engine's default applies, e.g. the checkpoint's
        top_p=body.top_p,
        stop=stops,
        seed=body.seed,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        ignore_eos=body.ignore_eos,
    )


def check_features(used: list[tuple[str, str]], served: ServedModel) -> None:
    """400 ``unsupported_parameter`` for the first feature ``served`` lacks (before any upstream call)."""
    for feature, param in used:
        if feature not in served.entry.served_features:
            raise APIError(
                400,
                f"Model {served.name!r} does not support {FEATURES[feature]}.",
                param=param,
                code="unsupported_parameter",
            )


def chat_request(
    body: ChatCompletionRequest, served: ServedModel, ctx: RequestContext, settings: Settings
) -> GenerationRequest:
    check_messages(len(body.messages), settings.caps)
    sampling = sampling_for(body, body.requested_max_tokens(), served, settings)  # first: it refuses tool messages
    messages = tuple(ChatMessage(_ROLES[m.role], m.text()) for m in body.messages)
    check_prompt_chars(sum(len(m.content) for m in messages), settings.caps, "messages")
    return GenerationRequest(ctx.request_id, served.name, sampling, messages=messages, user=body.user)


def completion_request(
    body: CompletionRequest, served: ServedModel, ctx: RequestContext, settings: Settings
) -> GenerationRequest:
    sampling = sampling_for(body, body.max_tokens, served, settings)  # first: it refuses a list of prompts
    prompt = body.prompt_text()
    check_prompt_chars(len(prompt), settings.caps, "prompt")
    return GenerationRequest(ctx.request_id, served.name, sampling, prompt=prompt, user=body.user)
