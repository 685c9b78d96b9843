"""Serve a request through an upstream that takes OpenAI bodies as they are (engine ``openai``: vLLM and the like).

The request's own JSON body is forwarded, not a rebuilt one: tools, ``n``, logprobs, ``response_format``, image and
audio parts and fields this gateway does not know reach the upstream as the client sent them (unknown fields are
logged by name, never by value). The gateway changes only

* ``model`` (the upstream's name for it) and ``guardrails`` (ours; removed);
* ``stream_options.include_usage`` on streams (always asked for: token counts for limits and records);
* the texts the input guards rewrote (:mod:`guardserve.app.serving.passthrough.texts` says where text is);

and in the answer only the response ``id`` (ours, so feedback can name it), ``model``, the texts the output guards
rewrote, and a ``guardrails`` explanation. The same steps as for the CPU engine run first, cheapest first: the
features the registry entry declares (a missing one is our 400 before any upstream call), size caps, the context
check, admission (rate limits), the input guards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, cast

import orjson
from pydantic import BaseModel
from starlette.responses import Response

from guardserve.app.context import RequestContext
from guardserve.app.errors import APIError
from guardserve.app.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from guardserve.app.services import Services
from guardserve.app.serving.caps import check_messages, check_prompt_chars
from guardserve.app.serving.driver import check_context, new_response_id, stream_error
from guardserve.app.serving.guarding import GuardSession, begin
from guardserve.app.serving.passthrough.answers import Kind, screen_answer
from guardserve.app.serving.passthrough.events import EventScreen, bounded_finish
from guardserve.app.serving.passthrough.texts import Slot, chat_input_slots, choices_of, list_input_slots, usage_counts
from guardserve.app.serving.requests import check_features, sampling_for
from guardserve.app.serving.streams import DONE, SSEResponse, sse_error
from guardserve.models.engine import (
    ChatMessage,
    EngineError,
    GenerationRequest,
    PassThrough,
    Role,
    SamplingParams,
    UpstreamError,
)
from guardserve.models.registry import ServedModel
from guardserve.models.sse import encode_data

log = logging.getLogger(__name__)

_ROLES: dict[str, Role] = {"system": "system", "developer": "system", "assistant": "assistant"}  # others: user
_OURS = ("guardrails",)  # request fields the gateway consumes and never forwards
# vLLM extensions that put text into the prompt outside `messages`/`prompt`: forwarded only while no input guard
# runs (they would carry text past the guards). chat_template_kwargs is let through when it holds no text.
_PROMPT_TEXT_FIELDS = ("chat_template", "documents", "prompt_embeds", "chat_template_kwargs")
_UNSCREENABLE_PARTS = {"input_audio": "speech", "audio_url": "speech", "file": "documents"}  # images, video: pass
_seen_unknown: set[str] = set()
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


async def chat(
    raw: dict[str, Any], body: ChatCompletionRequest, served: ServedModel, ctx: RequestContext, services: Services
) -> Response:
    caps = services.settings.caps
    check_messages(len(body.messages), caps)
    sampling = sampling_for(body, body.requested_max_tokens(), served, services.settings)
    located = chat_input_slots(raw)
    check_prompt_chars(sum(len(slot.text) for _, slot in located), caps, "messages")
    texts: dict[int, list[str]] = {}
    for i, slot in located:
        texts.setdefault(i, []).append(slot.text)
    messages = tuple(
        ChatMessage(_ROLES.get(m.role, "user"), "\n".join(texts.get(i, []))) for i, m in enumerate(body.messages)
    )
    shadow = GenerationRequest(ctx.request_id, served.name, sampling, messages=messages, user=body.user)
    where = [i if slot.key == "content" and isinstance(slot.holder, dict) else None for i, slot in located]
    session = await _prepare(
        raw, shadow, body.n, [slot for _, slot in located], served, ctx, services, body, where=where
    )
    forward = _forward_body(raw, served, body.stream, ChatCompletionRequest)
    if body.stream:
        return await _stream(served, "/chat/completions", forward, "chat", ctx, session, body.include_usage(), body.n)
    return await _whole(served, "/chat/completions", forward, "chat", ctx, session)


async def completion(
    raw: dict[str, Any], body: CompletionRequest, served: ServedModel, ctx: RequestContext, services: Services
) -> Response:
    sampling = sampling_for(body, body.max_tokens, served, services.settings)
    slots = list_input_slots(raw, "prompt") + list_input_slots(raw, "suffix")
    check_messages(len(slots), services.settings.caps)
    check_prompt_chars(sum(len(slot.text) for slot in slots), services.settings.caps, "prompt")
    prompt = "\n".join(slot.text for slot in slots)
    shadow = GenerationRequest(ctx.request_id, served.name, sampling, prompt=prompt, user=body.user)
    prompts = len(body.prompt) if isinstance(body.prompt, list) and not body.token_prompt() else 1
    token_ids = body.token_prompt()
    generated = max(body.n, body.best_of or 1) * prompts  # best_of: the upstream generates that many, returns n
    session = await _prepare(raw, shadow, generated, slots, served, ctx, services, body, token_ids=token_ids)
    forward = _forward_body(raw, served, body.stream, CompletionRequest)
    if body.stream:
        choices = body.n * prompts
        return await _stream(served, "/completions", forward, "text", ctx, session, body.include_usage(), choices)
    return await _whole(served, "/completions", forward, "text", ctx, session)


async def embeddings(
    raw: dict[str, Any], body: EmbeddingRequest, served: ServedModel, ctx: RequestContext, services: Services
) -> Response:
    check_features([("embeddings", "model")], served)
    slots = list_input_slots(raw, "input")
    check_messages(len(body.input) if isinstance(body.input, list) else 1, services.settings.caps)
    check_prompt_chars(sum(len(slot.text) for slot in slots), services.settings.caps, "input")
    shadow = GenerationRequest(
        ctx.request_id, served.name, SamplingParams(max_tokens=1), prompt="\n".join(body.texts()), user=body.user
    )
    session = begin(services, ctx, None)
    _refuse_token_ids(session, body.token_input(), "input")
    await services.admission.admit(ctx, served, shadow)
    await _screen(session, slots, ctx, only="pii")
    engine = cast(PassThrough, served.engine)
    data = await engine.post_json("/embeddings", _forward_body(raw, served, False, EmbeddingRequest))
    _usage(data, ctx)
    data["model"] = served.name
    if session.active:
        data["guardrails"] = session.explanation()
    return _json(data, session)


# --- the steps ------------------------------------------------------------------------------------------------


async def _prepare(
    raw: dict[str, Any],
    shadow: GenerationRequest,
    choices: int,
    slots: list[Slot],
    served: ServedModel,
    ctx: RequestContext,
    services: Services,
    body: ChatCompletionRequest | CompletionRequest,
    token_ids: bool = False,
    where: list[int | None] | None = None,
) -> GuardSession:
    """Policy, context check, admission (reserving ``max_tokens`` for each of the ``choices`` the upstream
    generates), input guards; cheapest first.
    ``shadow`` stands for the request where a count is needed: its messages hold the texts the body carries."""
    session = begin(services, ctx, body.requested_policy())
    _refuse_token_ids(session, token_ids, "prompt")
    _refuse_unscreened_text(session, raw)
    await check_context(served, shadow, ctx, services)
    reserve = shadow.sampling.max_tokens
    if reserve is not None and choices > 1:
        sampling = dataclasses.replace(shadow.sampling, max_tokens=reserve * choices)
        shadow = dataclasses.replace(shadow, sampling=sampling)
    await services.admission.admit(ctx, served, shadow)
    await _screen(session, slots, ctx, where=where)
    return session


def _refuse_token_ids(session: GuardSession, token_ids: bool, param: str) -> None:
    if token_ids and session.policy is not None and session.policy.input_guards:
        raise APIError(
            400,
            f"Token ids cannot be screened by guardrails policy '{session.policy.name}'; send text instead.",
            param=param,
            code="invalid_value",
        )


def _refuse_unscreened_text(session: GuardSession, raw: dict[str, Any]) -> None:
    """Under a policy with input guards, a 400 for what would carry text past them: prompt-shaping fields, and audio
    or file content parts (speech and documents the guards cannot read; images pass, screened only by the model)."""
    if session.policy is None or not session.policy.input_guards:
        return
    for i, message in enumerate(raw.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else []):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in _UNSCREENABLE_PARTS:
                raise APIError(
                    400,
                    f"'{kind}' content parts carry {_UNSCREENABLE_PARTS[kind]} that guardrails policy "
                    f"'{session.policy.name}' cannot screen; send text, or use a policy without input guards.",
                    param=f"messages[{i}].content[{j}]",
                    code="unsupported_parameter",
                )
    for field in _PROMPT_TEXT_FIELDS:
        value = raw.get(field)
        if value is None or (field == "chat_template_kwargs" and not _holds_text(value)):
            continue
        raise APIError(
            400,
            f"'{field}' puts text into the prompt that guardrails policy '{session.policy.name}' cannot screen.",
            param=field,
            code="unsupported_parameter",
        )


def _holds_text(value: Any) -> bool:
    if isinstance(value, str):
        return True
    if isinstance(value, dict):
        return any(_holds_text(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_text(v) for v in value)
    return False


async def _screen(
    session: GuardSession,
    slots: list[Slot],
    ctx: RequestContext,
    only: str | None = None,
    where: list[int | None] | None = None,
) -> None:
    if slots:
        texts = await session.screen_texts([(slot.role, slot.text) for slot in slots], only=only, where=where)
        for slot, text in zip(slots, texts, strict=True):
            slot.set(text)
    if ctx.retention == "scrubbed":  # the response record keeps a scrubbed copy (guardserve.app.feedback)
        ctx.transcript = tuple((slot.role, slot.text) for slot in slots)
        ctx.answer_parts = []


def _forward_body(raw: dict[str, Any], served: ServedModel, stream: bool, model: type[BaseModel]) -> dict[str, Any]:
    body = {k: v for k, v in raw.items() if k not in _OURS}
    body["model"] = served.entry.upstream_model or served.name
    if stream:
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    _log_unknown(body, model)
    return body


def _log_unknown(body: dict[str, Any], model: type[BaseModel]) -> None:
    """Fields the gateway does not know are forwarded; each is logged once per process, by name only."""
    for name in body.keys() - model.model_fields.keys():
        label = name if _NAME.match(name) else "<unprintable name>"
        if label not in _seen_unknown and len(_seen_unknown) < 256:
            _seen_unknown.add(label)
            log.info("forwarding a request field this gateway does not know: %s", label)


async def _whole(
    served: ServedModel, path: str, forward: dict[str, Any], kind: Kind, ctx: RequestContext, session: GuardSession
) -> Response:
    try:
        data = await cast(PassThrough, served.engine).post_json(path, forward)
    except EngineError as exc:
        await _screen_error(exc, session)
        raise
    with _counted(served, session):  # what the upstream sent is checked while it is screened
        _usage(data, ctx)
        await screen_answer(data, kind, session)
    choices = choices_of(data, "completion")
    ctx.finish_reason = bounded_finish(choices[0].get("finish_reason"))
    if ctx.answer_parts is not None:
        first = choices[0].get("message") if kind == "chat" else choices[0]
        text = first.get("content" if kind == "chat" else "text") if isinstance(first, dict) else None
        if isinstance(text, str) and text:
            ctx.answer_parts.append(text)
    data["id"] = new_response_id(ctx, "chatcmpl" if kind == "chat" else "cmpl")
    data["model"] = served.name
    if session.active:
        data["guardrails"] = session.explanation()
    return _json(data, session)


async def _stream(
    served: ServedModel,
    path: str,
    forward: dict[str, Any],
    kind: Kind,
    ctx: RequestContext,
    session: GuardSession,
    include_usage: bool,
    choices: int,
) -> Response:
    events = cast(PassThrough, served.engine).post_stream(path, forward)
    try:  # the upstream's status (and its first event) before our 200: an upstream 400 stays a 400
        first = await anext(events)
    except StopAsyncIteration:
        raise UpstreamError("upstream stream ended before its first event") from None
    except EngineError as exc:
        await events.aclose()  # type: ignore[attr-defined]
        await _screen_error(exc, session)
        raise
    except BaseException:
        await events.aclose()  # type: ignore[attr-defined]
        raise
    new_response_id(ctx, "chatcmpl" if kind == "chat" else "cmpl")
    screen = EventScreen(session, ctx, kind, served.name, include_usage, choices)
    body = _sse(first, events, screen, ctx, session, lambda: _counted(served, session))
    return SSEResponse(body, on_close=events.aclose, headers=session.headers())  # type: ignore[attr-defined]


async def _sse(
    first: dict[str, Any],
    events: AsyncIterator[dict[str, Any]],
    screen: EventScreen,
    ctx: RequestContext,
    session: GuardSession,
    counted: Callable[[], AbstractContextManager[None]],
) -> AsyncIterator[bytes]:
    try:
        with counted():
            out = await screen.event(first)
        if out is not None:
            yield _event(out)
        async for event in events:
            with counted():
                out = await screen.event(event)
            if out is not None:
                if ctx.first_sent_at is None and ctx.first_token_at is not None:
                    ctx.first_sent_at = time.perf_counter()
                yield _event(out)
        last = screen.close()
        if last is not None:
            yield _event(last)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # cancelled or closed: the client went away mid-stream
            ctx.disconnected = True
            raise
        ctx.finish_reason = "error"
        if isinstance(exc, EngineError):
            await _screen_error(exc, session)
        yield sse_error(stream_error(exc, ctx))
    finally:
        screen.finish_recording()
    yield DONE


_WITHHELD = "upstream error (its message was withheld by the guardrails)"


async def _screen_error(exc: EngineError, session: GuardSession) -> None:
    """An upstream's error message can quote what the model wrote (a tool call it could not parse): it passes the
    output guards like any answer, and is withheld if they block it."""
    screened = await session.screen_message(exc.message)
    if screened != exc.message:
        exc.message = screened if screened is not None else _WITHHELD
        exc.args = (exc.message,)


@contextlib.contextmanager
def _counted(served: ServedModel, session: GuardSession) -> Iterator[None]:
    """A malformed answer or event (found here, not in the engine) counts as the engine's error, as one the engine
    itself reports does (``guardserve_engine_errors_total``)."""
    try:
        yield
    except EngineError as exc:
        session.metrics.engine_error(served.name, exc.kind)
        raise


def _event(payload: dict[str, Any]) -> bytes:
    return encode_data(orjson.dumps(payload))


def _usage(data: dict[str, Any], ctx: RequestContext) -> None:
    prompt, completion = usage_counts(data, "response")
    ctx.prompt_tokens = prompt if prompt is not None else ctx.prompt_tokens
    ctx.completion_tokens = completion if completion is not None else ctx.completion_tokens


def _json(data: dict[str, Any], session: GuardSession) -> Response:
    return Response(content=orjson.dumps(data), media_type="application/json", headers=session.headers())
