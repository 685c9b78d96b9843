"""OpenAI-compatible routes. Thin: resolve the model, hand over to ``guardserve.app.serving``, race the client."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import Response

from guardserve.app.cancellation import until_disconnect
from guardserve.app.context import RequestContext, get_context
from guardserve.app.errors import APIError, ClientDisconnectedError
from guardserve.app.feedback.service import FeedbackService
from guardserve.app.protocol import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    ModelCard,
    ModelList,
    ModelVersion,
)
from guardserve.app.rollout import Canary, choose
from guardserve.app.routers.json_route import JSONBodyRoute
from guardserve.app.services import Services
from guardserve.app.serving.chat import chat_completion, chat_completion_stream
from guardserve.app.serving.completions import text_completion, text_completion_stream
from guardserve.app.serving.passthrough import handlers as passthrough
from guardserve.models.registry import ServedModel


def _forwardable(request: Request, parsed: Any) -> dict[str, Any]:
    """The body as sent, for an upstream: only what strict JSON holds."""
    reason = getattr(request, "not_strict", None)
    if reason is not None:
        raise APIError(400, f"The request body is not valid JSON: {reason}.", code="invalid_json")
    raw: dict[str, Any] = parsed
    return raw


router = APIRouter(prefix="/v1", route_class=JSONBodyRoute)  # POST bodies: app/routers/json_route.py
# With "stream": true the answer is server-sent events: each event's data a JSON chunk, the last "[DONE]".
_EVENT = {"type": "object", "required": ["data"], "properties": {"data": {"type": "string"}}}
_STREAM: dict[str, object] = {"text/event-stream": {"schema": _EVENT}}


def _served(request: Request, name: str) -> ServedModel:
    models: dict[str, ServedModel] = request.app.state.models
    served = models.get(name)
    if served is None:
        raise APIError(
            404,
            f"The model '{name}' does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    return served


def _version(request: Request, stable: ServedModel, sticky: str) -> ServedModel:
    """The stable version, or its candidate for the share of users the registry gives it (app.rollout)."""
    canaries: dict[str, Canary] = request.app.state.canaries
    return choose(stable, canaries.get(stable.name), sticky)


def _json(payload: BaseModel) -> Response:
    return Response(content=payload.__pydantic_serializer__.to_json(payload), media_type="application/json")


Body = TypeVar("Body", ChatCompletionRequest, CompletionRequest, EmbeddingRequest)
Handler = Callable[[Body, ServedModel, RequestContext, Services], Coroutine[Any, Any, Response]]
RawHandler = Callable[[dict[str, Any], Body, ServedModel, RequestContext, Services], Coroutine[Any, Any, Response]]


async def _respond(
    request: Request, body: Body, whole: Handler[Body] | None, streamed: Handler[Body] | None, raw: RawHandler[Body]
) -> Response:
    """Hand over to ``app.serving``: the request's own JSON to an engine that forwards OpenAI bodies (``raw``),
    else the validated body to the endpoint's handler (``whole`` or ``streamed``; None: only pass-through serves
    the route, and the model's features refuse it)."""
    ctx = get_context(request)
    served = _version(request, _served(request, body.model), body.user or ctx.key_id or ctx.request_id)
    ctx.model, ctx.user, ctx.model_version = served.name, body.user, served.entry.version
    ctx.response_headers["x-guardserve-model-version"] = served.entry.version
    release = request.app.state.model_set.acquire(served)  # a reload drains this version only after this request

    async def released(_: RequestContext) -> None:
        release()

    ctx.on_finish(released)
    services: Services = request.app.state.services
    records: FeedbackService | None = request.app.state.feedback
    if records is None:
        ctx.retention = "off"
    else:  # the response record is written once the answer is over (guardserve.app.feedback)
        ctx.retention = records.retention_for(ctx)
        ctx.on_finish(records.response_finished())
    try:
        handler = streamed if getattr(body, "stream", False) else whole
        if handler is None or served.passthrough:  # a route only upstreams serve is refused by the raw handler
            work = raw(_forwardable(request, await request.json()), body, served, ctx, services)  # parsed once
        else:
            work = handler(body, served, ctx, services)
        return await until_disconnect(request, work)
    except ClientDisconnectedError:
        ctx.disconnected = True
        raise


@router.post("/chat/completions", responses={200: {"model": ChatCompletion, "content": _STREAM}})
async def create_chat_completion(body: ChatCompletionRequest, request: Request) -> Response:
    return await _respond(request, body, chat_completion, chat_completion_stream, passthrough.chat)


@router.post("/completions", responses={200: {"model": Completion, "content": _STREAM}})
async def create_completion(body: CompletionRequest, request: Request) -> Response:
    return await _respond(request, body, text_completion, text_completion_stream, passthrough.completion)


@router.post("/embeddings")
async def create_embeddings(body: EmbeddingRequest, request: Request) -> Response:
    """Embeddings from an upstream that serves them (registry feature ``embeddings``); inputs pass the PII guard."""
    return await _respond(request, body, None, None, passthrough.embeddings)


def _card(served: ServedModel, canary: Canary | None) -> ModelCard:
    versions = [ModelVersion(label=served.entry.version, traffic_percent=100.0 - (canary.percent if canary else 0.0))]
    if canary is not None:
        versions.append(ModelVersion(label=canary.served.entry.version, traffic_percent=canary.percent))
    return ModelCard(
        id=served.name,
        created=served.created,
        engine=served.entry.engine,
        context_length=served.context_length,
        trained=served.trained,
        description=served.entry.description or ("untrained: answers are noise" if not served.trained else ""),
        features=sorted(served.entry.served_features),
        versions=versions,
    )


@router.get("/models", responses={200: {"model": ModelList}})
async def list_models(request: Request) -> Response:
    models: dict[str, ServedModel] = request.app.state.models
    canaries: dict[str, Canary] = request.app.state.canaries
    return _json(ModelList(data=[_card(m, canaries.get(m.name)) for m in models.values()]))


@router.get("/models/{model_id:path}", responses={200: {"model": ModelCard}})
async def retrieve_model(model_id: str, request: Request) -> Response:
    return _json(_card(_served(request, model_id), request.app.state.canaries.get(model_id)))
