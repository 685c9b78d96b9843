"""Tracing: a request span with admission and engine spans under it, errors marked, no personal data, and a no-op
without the `otel` extra. Spans go to the OpenTelemetry SDK's in-memory exporter; nothing leaves the process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from guardserve.app.main import create_app
from guardserve.app.observability.core import Observability
from guardserve.app.observability.otel import OTelTracer
from guardserve.app.observability.tracing import NoTracer, build_tracer
from guardserve.app.settings import ObservabilitySettings, Settings
from guardserve.models.registry import ModelEntry
from tests.conftest import TINY
from tests.support.servers import LiveServer, free_port, serve_in_thread, wait_until
from tests.support.waits import SUBPROCESS_S

EMAIL, CARD = "jane.doe@example.com", "4111 1111 1111 1111"
PII_MESSAGES = [{"role": "user", "content": f"I am {EMAIL}, card {CARD}"}]


@pytest.fixture(scope="module")
def traced(tiny_checkpoint: Path) -> Iterator[tuple[LiveServer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(
        models=[
            ModelEntry(name=TINY, engine="cpu", checkpoint=tiny_checkpoint),
            ModelEntry(name="remote", engine="openai", url=f"http://127.0.0.1:{free_port()}/v1", context_length=2048),
        ]
    )
    app = create_app(settings, Observability.from_settings(settings, tracer=OTelTracer(provider)))
    server = serve_in_thread(app)
    yield server, exporter
    server.stop()


def spans_of(exporter: InMemorySpanExporter, request_id: str) -> dict[str, ReadableSpan]:
    """The spans of one request (its trace), by name, once its request span has ended."""

    def request_span() -> ReadableSpan | None:
        for span in exporter.get_finished_spans():
            if span.name == "guardserve.request" and (span.attributes or {}).get("guardserve.request_id") == request_id:
                return span
        return None

    wait_until(lambda: request_span() is not None, 5)
    root = request_span()
    assert root is not None and root.context is not None
    trace_id = root.context.trace_id
    return {s.name: s for s in exporter.get_finished_spans() if s.context and s.context.trace_id == trace_id}


def test_streamed_request_has_admission_and_engine_spans(traced: tuple[LiveServer, InMemorySpanExporter]) -> None:
    server, exporter = traced
    client = openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model=TINY,
        messages=PII_MESSAGES,  # type: ignore[arg-type]
        max_tokens=5,
        stream=True,
        user=EMAIL,
        extra_headers={"X-Request-ID": "trace-stream"},
        seed=0,  # seeded sampling: the random-weight model's greedy choice is a special token (no text, no first_token)
        extra_body={"ignore_eos": True},
    )
    chunks = [c.choices[0] for c in stream if c.choices]
    assert any(c.delta.content for c in chunks) and [c.finish_reason for c in chunks if c.finish_reason] == ["length"]
    spans = spans_of(exporter, "trace-stream")
    guards = {
        "guard.prompt_injection",
        "guard.toxicity",
        "guard.harmful_request",
        "guard.pii",
    }  # the input stage, one span per guard
    assert set(spans) == {"guardserve.request", "admission", "engine.stream", *guards}
    root, admission, engine = spans["guardserve.request"], spans["admission"], spans["engine.stream"]
    for name in guards:
        guard = spans[name]
        assert guard.parent is not None and root.context is not None and guard.parent.span_id == root.context.span_id
        assert dict(guard.attributes or {}) == {"guardserve.guard": name[6:], "guardserve.stage": "input"}
    assert root.kind is SpanKind.SERVER and root.parent is None
    assert dict(root.attributes or {}) == {
        "http.request.method": "POST",
        "guardserve.request_id": "trace-stream",
        "http.route": "/v1/chat/completions",
        "http.response.status_code": 200,
        "guardserve.model": TINY,
    }
    assert root.context is not None
    for child in (admission, engine):
        assert child.parent is not None and child.parent.span_id == root.context.span_id
    assert dict(engine.attributes or {}) == {
        "guardserve.engine": TINY,
        "guardserve.engine_kind": "cpu",
        "guardserve.finish_reason": "length",
    }
    assert [e.name for e in engine.events] == ["first_token"]
    assert engine.status.status_code is StatusCode.UNSET
    assert root.start_time is not None and engine.start_time is not None and engine.start_time >= root.start_time


def test_engine_failure_marks_the_engine_span(traced: tuple[LiveServer, InMemorySpanExporter]) -> None:
    server, exporter = traced
    body = {"model": "remote", "messages": PII_MESSAGES}
    response = httpx.post(f"{server.v1}/chat/completions", json=body, headers={"X-Request-ID": "trace-down"})
    assert response.status_code == 503
    spans = spans_of(exporter, "trace-down")
    engine = spans["engine.generate"]
    assert engine.status.status_code is StatusCode.ERROR and engine.status.description is None
    assert (engine.attributes or {})["error.type"] == "unavailable"
    assert not engine.events  # no exception event: its message could quote the request
    assert (spans["guardserve.request"].attributes or {})["http.response.status_code"] == 503


def test_spans_carry_no_personal_data(traced: tuple[LiveServer, InMemorySpanExporter]) -> None:
    server, exporter = traced
    httpx.post(f"{server.v1}/chat/completions", json={"model": EMAIL, "messages": PII_MESSAGES})
    httpx.get(f"{server.v1}/models/{EMAIL}")
    exported = json.dumps([json.loads(span.to_json()) for span in exporter.get_finished_spans()])
    assert "guardserve.request" in exported
    for needle in (EMAIL, CARD, "jane.doe"):
        assert needle not in exported
    # The card's digits in any grouping; not inside a hex id (a request id once held "...d554111a...").
    assert not re.search(r"(?<![0-9a-f])4111[ -]?1111", exported)


def test_tracer_follows_the_settings() -> None:
    assert isinstance(build_tracer(ObservabilitySettings()), NoTracer)  # off by default
    tracer = build_tracer(ObservabilitySettings(otel_enabled=True))  # exporter to loopback; nothing sent here
    assert isinstance(tracer, OTelTracer)
    tracer.shutdown()


def test_without_the_otel_extra_tracing_is_a_no_op() -> None:
    code = """
import sys

class NoOtelExtra:  # the SDK and exporter are not installed
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter")):
            raise ImportError(name)
        return None

sys.meta_path.insert(0, NoOtelExtra())
from fastapi.testclient import TestClient
from guardserve.app.main import create_app
from guardserve.app.settings import ObservabilitySettings, Settings
from guardserve.models.registry import ModelEntry
entry = ModelEntry(name="remote", engine="openai", url="http://127.0.0.1:9/v1", context_length=4096)
app = create_app(Settings(models=[entry], observability=ObservabilitySettings(otel_enabled=True)))
assert type(app.state.observability.tracer).__name__ == "NoTracer"
with TestClient(app) as client:
    assert client.get("/v1/models").status_code == 200
    assert client.post("/v1/chat/completions", json={"model": "remote", "messages": []}).status_code == 400
assert not any(m.startswith("opentelemetry.sdk") for m in sys.modules)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=SUBPROCESS_S)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    assert "`otel` extra is not installed" in result.stderr
