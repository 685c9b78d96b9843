"""``/ui``: the web playground's static files, each with a strict Content-Security-Policy, and one read-only route
(``/ui/api/guardrails``) with what the page needs that the API does not say: the policy names for the picker and the
thresholds moderation scores are compared with.

The files are a fixed set read from the package (no path from the URL reaches the filesystem). The pages need no API
key: the page asks for one and sends it on its own API calls, ``/ui/api/*`` included (the auth middleware guards
it like ``/v1``). The policies listed are the ones the caller's key may ask for (at least as strict as its own).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from guardserve.app.context import get_context
from guardserve.app.errors import APIError
from guardserve.guardrails.policy import HarmfulRequestSpec, InjectionSpec, PIIGuardSpec, PolicySpec, ToxicitySpec

router = APIRouter(prefix="/ui", include_in_schema=False)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
FILES = (
    "index.html",
    "app.js",
    "api.js",
    "chat.js",
    "highlight.js",
    "feedback.js",
    "moderation.js",
    "admin.js",
    "ui.css",
)


@cache
def _static(name: str) -> bytes:
    return resources.files("guardserve.app.ui").joinpath("static", name).read_bytes()


def _file(name: str) -> Response:
    media = TYPES[name[name.rindex(".") :]]
    return Response(_static(name), media_type=media, headers=HEADERS)


@router.get("")
async def ui_root() -> Response:
    return RedirectResponse("/ui/", status_code=307, headers=HEADERS)


@router.get("/")
async def ui_index() -> Response:
    return _file("index.html")


@router.get("/api/guardrails")
async def ui_guardrails(request: Request) -> Response:
    guardrails = request.app.state.services.guardrails
    if guardrails is None:
        body: dict[str, Any] = {"enabled": False, "default_policy": None, "policies": [], "moderation_thresholds": {}}
    else:
        default = guardrails.policy().spec
        own = guardrails.policies.get(get_context(request).policy or guardrails.default_name, guardrails.policy())
        body = {
            "enabled": True,
            "default_policy": guardrails.default_name,
            "key_policy": own.name,
            "policies": [
                {
                    "name": name,
                    "description": p.spec.description,
                    "as_strict_as_default": p.spec.at_least_as_strict_as(default),
                }
                for name, p in sorted(guardrails.policies.items())
                if p.spec.at_least_as_strict_as(own.spec)  # a weaker one would be refused (403)
            ],
            "moderation_thresholds": moderation_thresholds(default),
        }
    return Response(orjson.dumps(body), media_type="application/json", headers=HEADERS)


def moderation_thresholds(spec: PolicySpec) -> dict[str, float]:
    """The thresholds ``/v1/moderations`` flags with: the default policy's input guards (toxicity falls back to the
    output stage), the guards' own defaults where the policy has none (as ``Guardrails._build_moderation`` does)."""
    stage = spec.input
    return {
        "pii": (stage.pii or PIIGuardSpec()).threshold,
        "toxicity": (stage.toxicity or spec.output.toxicity or ToxicitySpec()).threshold,
        "harmful_request": (stage.harmful_request or HarmfulRequestSpec()).threshold,
        "prompt_injection": (stage.prompt_injection or InjectionSpec()).threshold,
    }


@router.get("/{name}")
async def ui_file(name: str) -> Response:
    if name not in FILES:
        raise APIError(404, f"Unknown request URL: GET /ui/{name}.", code="unknown_url")
    return _file(name)
