"""Structured logs: one JSON object per line with the request id, and no personal data, even at debug level."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from guardserve.app.observability.logs import JSONFormatter, request_id_var
from tests.conftest import TINY
from tests.support.gateway_process import GatewayProcess, start_with_registry
from tests.support.servers import free_port

EMAIL = "jane.doe@example.com"
PHONE = "+1 (202) 555-0143"
CARD = "4111 1111 1111 1111"
SSN = "078-05-1120"
NAME = "Marguerite Okonkwo-Lindqvist"
IBAN = "GB82 WEST 1234 5698 7654 32"
API_KEY = "sk-live-7f3c9a1e5b2d4c6e8f0a"
USER = "customer-7731-jane.doe@example.com"
PII = f"My name is {NAME}, mail {EMAIL}, phone {PHONE}, card {CARD}, SSN {SSN}, IBAN {IBAN}."
# Every raw value, and the digits-only forms a log could normalise them to.
NEEDLES = [EMAIL, PHONE, CARD, SSN, NAME, IBAN, API_KEY, USER, "4111111111111111", "2025550143", "078051120"]
NEEDLES += ["Okonkwo", "Lindqvist", "jane.doe", "555-0143", "7f3c9a1e5b2d"]


def make_record(message: str = "hello", exc: BaseException | None = None, **extra: Any) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, message, (), exc_info)
    record.__dict__.update(extra)
    return record


def test_formatter_writes_one_object_with_safe_fields_only() -> None:
    line = JSONFormatter().format(make_record(route="/v1/completions", status=200, prompt=PII, user=USER))
    entry = json.loads(line)
    assert set(entry) == {"ts", "level", "logger", "message", "request_id", "route", "status"}
    assert entry["route"] == "/v1/completions" and entry["level"] == "error" and entry["request_id"] is None
    assert "\n" not in line


def test_exception_messages_are_dropped_inside_requests() -> None:
    try:
        raise ValueError(f"could not parse {EMAIL}")
    except ValueError as exc:
        error = exc
    token = request_id_var.set("req-1")
    try:
        inside = json.loads(JSONFormatter().format(make_record(exc=error)))
    finally:
        request_id_var.reset(token)
    assert inside["request_id"] == "req-1"
    assert inside["exception"]["type"] == "builtins.ValueError" and "raise ValueError" in inside["exception"]["stack"]
    assert "message" not in inside["exception"] and EMAIL not in json.dumps(inside)
    outside = json.loads(JSONFormatter().format(make_record(exc=error)))  # start-up: the message helps and is ours
    assert outside["exception"]["message"] == f"could not parse {EMAIL}"


# --- the real server at debug level --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def debug_gateway(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    registry = (
        f"models:\n  {TINY}:\n    engine: cpu\n    checkpoint: {tiny_checkpoint}\n"
        f"  remote:\n    engine: openai\n    url: http://127.0.0.1:{free_port()}/v1\n    context_length: 2048\n"
    )
    env = {"GUARDSERVE_LOG_LEVEL": "debug", "GUARDSERVE_OBSERVABILITY__ENGINE_HEALTH_INTERVAL": "0.5"}
    gateway = start_with_registry(tmp_path_factory.mktemp("logs"), registry, env)
    yield gateway
    gateway.stop()


def send_pii_everywhere(gateway: GatewayProcess) -> dict[str, int]:
    """Requests that carry personal data in every field a client controls; returns status by request id."""
    v1 = f"{gateway.url}/v1"
    headers = {"Authorization": f"Bearer {API_KEY}", "User-Agent": NAME}
    client = openai.OpenAI(base_url=v1, api_key=API_KEY, max_retries=0, default_headers={"User-Agent": NAME})
    messages: Any = [{"role": "system", "content": f"Customer: {NAME}"}, {"role": "user", "content": PII}]
    statuses: dict[str, int] = {}

    def track(request_id: str, response: httpx.Response) -> None:
        assert response.headers["x-request-id"] == request_id
        statuses[request_id] = response.status_code

    raw = client.chat.completions.with_raw_response.create(
        model=TINY,
        messages=messages,
        max_tokens=8,
        user=USER,
        extra_headers={"X-Request-ID": "pii-chat"},
        extra_body={"ignore_eos": True},
    )
    statuses[raw.headers["x-request-id"]] = raw.status_code
    with client.chat.completions.with_streaming_response.create(
        model=TINY, messages=messages, max_tokens=8, stream=True, user=USER, extra_headers={"X-Request-ID": "pii-sse"}
    ) as streamed:
        assert "data: [DONE]" in streamed.text()
        statuses[streamed.headers["x-request-id"]] = streamed.status_code
    completion = {"model": TINY, "prompt": PII, "max_tokens": 8, "echo": True, "stream": True, "user": USER}
    track("pii-echo", httpx.post(f"{v1}/completions", json=completion, headers={**headers, "X-Request-ID": "pii-echo"}))

    cases: list[tuple[str, str, str, Any]] = [
        ("pii-invalid", "POST", "/chat/completions", {"model": TINY, "messages": messages, "temperature": 5}),
        (
            "pii-too-long",
            "POST",
            "/chat/completions",
            {"model": TINY, "messages": [{"role": "user", "content": PII * 60}]},
        ),
        ("pii-model", "POST", "/chat/completions", {"model": EMAIL, "messages": messages, "user": USER}),
        ("pii-upstream-down", "POST", "/chat/completions", {"model": "remote", "messages": messages, "user": USER}),
        ("pii-card-path", "GET", f"/models/{EMAIL}", None),
        ("pii-unknown-url", "GET", f"/{SSN}?email={EMAIL}&card={CARD}", None),
        ("pii-bad-json", "POST", "/chat/completions", f'{{"model": "{TINY}", "messages": "{PII}'),
    ]
    for request_id, method, path, body in cases:
        kwargs: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
        response = httpx.request(
            method, v1 + path, headers={**headers, "X-Request-ID": request_id}, timeout=30, **kwargs
        )
        track(request_id, response)
    # A request id the gateway refuses (it is not plain) is replaced, never logged.
    replaced = httpx.get(f"{v1}/models", headers={"X-Request-ID": EMAIL}, timeout=10)
    assert replaced.headers["x-request-id"] != EMAIL
    statuses[replaced.headers["x-request-id"]] = replaced.status_code
    return statuses


def test_every_log_line_is_json_with_a_request_id_and_no_personal_data(debug_gateway: GatewayProcess) -> None:
    statuses = send_pii_everywhere(debug_gateway)
    assert statuses == {
        "pii-chat": 200,
        "pii-sse": 200,
        "pii-echo": 200,
        "pii-invalid": 400,
        "pii-too-long": 400,
        "pii-model": 404,
        "pii-upstream-down": 503,
        "pii-card-path": 404,
        "pii-unknown-url": 404,
        "pii-bad-json": 400,
        **{rid: 200 for rid in statuses if not rid.startswith("pii-")},
    }
    debug_gateway.stop()  # flush everything, shutdown lines included

    lines = debug_gateway.lines()
    records = debug_gateway.records()  # every line parses as one JSON object
    for record in records:
        assert {"ts", "level", "logger", "message", "request_id"} <= set(record), record
    assert any(r["level"] == "debug" for r in records), "the server did not log at debug level"
    for line in lines:
        for needle in NEEDLES:
            assert needle.lower() not in line.lower(), f"{needle!r} leaked into the logs: {line}"

    # One access line per request, carrying its id and only safe, bounded fields.
    access = {r["request_id"]: r for r in records if r["logger"] == "guardserve.access"}
    assert set(statuses) <= set(access)
    for request_id, status in statuses.items():
        assert access[request_id]["status"] == status
    chat = access["pii-chat"]
    assert chat["route"] == "/v1/chat/completions" and chat["model"] == TINY and chat["method"] == "POST"
    assert chat["prompt_tokens"] > 0 and chat["completion_tokens"] == 8 and chat["duration_ms"] > 0
    assert access["pii-sse"]["ttft_ms"] > 0
    assert access["pii-unknown-url"]["route"] == "unmatched"
    assert access["pii-card-path"]["route"] == "/v1/models/{model_id}"
    assert access["pii-model"]["model"] is None


def test_the_upstream_clients_request_lines_are_not_logged() -> None:
    """httpx logs every request at INFO, upstream URL included: the gateway's configuration keeps it to warnings."""
    import logging.config

    from guardserve.app.observability.logs import logging_config

    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    names = ("httpx", "httpcore", "uvicorn", "uvicorn.error", "uvicorn.access")
    levels = {name: logging.getLogger(name).level for name in names}
    logging.config.dictConfig(logging_config("info", "json"))
    try:
        assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
        assert logging.getLogger("guardserve.app").isEnabledFor(logging.INFO)
    finally:  # leave this process' logging as the suite had it
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
