"""Structured logs: one JSON object per line, with the request id, and nothing a user typed.

Every line has ``ts``, ``level``, ``logger``, ``message`` and ``request_id`` (null outside a request), plus the
fields of :data:`SAFE_FIELDS` that a call passes in ``extra``; other extras are dropped, so an accidental
``extra={"prompt": ...}`` never reaches the output. Inside a request an exception is logged as its type and stack
without its message (messages can quote the request); outside one (start-up) the message is kept.

Rules for code that logs: never pass prompts, completions, the ``user`` field, API keys, headers or raw paths as
arguments or extras. The per-request access line (``guardserve.access``) uses the route template.
"""

from __future__ import annotations

import logging
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

request_id_var: ContextVar[str | None] = ContextVar("guardserve_request_id", default=None)

# The only extras that reach the output, in this order.
SAFE_FIELDS = (
    "method",
    "route",
    "status",
    "model",
    "engine",
    "kind",
    "duration_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "finish_reason",
    "disconnected",
    "guard",
    "stage",
    "action",
    "limit",
    "result",
    "port",
)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id,
        }
        fields = record.__dict__
        for key in SAFE_FIELDS:
            if key in fields:
                entry[key] = fields[key]
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = _exception(record.exc_info, with_message=request_id is None)
        return orjson.dumps(entry, default=str).decode()


def _exception(exc_info: Any, with_message: bool) -> dict[str, str]:
    exc_type, exc, tb = exc_info
    stack = "".join(traceback.format_tb(tb))
    info = {"type": f"{exc_type.__module__}.{exc_type.__qualname__}", "stack": stack}
    if with_message:
        info["message"] = str(exc)
    return info


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """``logging.config.dictConfig`` for the gateway and uvicorn (also used as uvicorn's ``log_config``).

    uvicorn's loggers propagate to the root handler so that they share the format; uvicorn's access log is off
    (the gateway writes its own access line, without the raw path or query), and so are the upstream client's
    per-request lines (httpx, at INFO).
    """
    level = level.upper()
    formatter: dict[str, Any] = (
        {"()": "guardserve.app.observability.logs.JSONFormatter"} if fmt == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # one INFO line per upstream call (with the upstream's URL) from the HTTP engine's client: noise
            "httpx": {"handlers": [], "level": "WARNING", "propagate": True},
            "httpcore": {"handlers": [], "level": "WARNING", "propagate": True},
        },
    }
