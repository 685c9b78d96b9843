"""Guard work is bounded (issue 11, 2c and 5): caps before anything costly, the context check before admission, a
bounded guard queue, a deadline, and cancellation when the client leaves. Real gateway, real Presidio, the official
openai client."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from guardserve.app.main import create_app
from guardserve.app.settings import GuardrailSettings
from guardserve.guardrails.guards import PIIGuard, pieces
from guardserve.guardrails.runtime import Guardrails
from guardserve.models.registry import ModelEntry, ServedModel
from tests.conftest import TINY, cpu_settings
from tests.support.scripted_engine import ScriptedEngine
from tests.support.servers import LiveServer, serve_in_thread, wait_until

SENTENCE = "My name is John Smith, I live in Berlin and my e-mail is john.smith@example.com. "
BIG = (SENTENCE * 400)[:30_000]  # under the 32,768-character cap; Presidio needs seconds for it here


WIDE = "wide"  # a model with a large context and no tokenizer at the gateway: long prompts reach the guards


def chat(text: str, model: str = WIDE) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 2}


def serve(checkpoint: Path, **guardrails: Any) -> LiveServer:
    server = serve_in_thread(create_app(cpu_settings(checkpoint, guardrails=GuardrailSettings(**guardrails))))
    entry = ModelEntry(name=WIDE, engine="openai", url="http://scripted.invalid/v1", context_length=131_072)
    server.app.state.models[WIDE] = ServedModel(entry, ScriptedEngine(lambda r: "Fine."), 131_072, True, 0)
    return server


@pytest.fixture(scope="module")
def guarded(tiny_checkpoint: Path) -> Iterator[LiveServer]:
    server = serve(tiny_checkpoint)
    yield server
    server.stop()


def guards_of(server: LiveServer) -> Guardrails:
    guardrails = server.app.state.services.guardrails
    assert isinstance(guardrails, Guardrails)
    return guardrails


def pii_guard(server: LiveServer) -> PIIGuard:
    guard = next(g for g in guards_of(server).policy().input_guards if isinstance(g, PIIGuard))
    return guard


def client(server: LiveServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.v1, api_key="unused", **kwargs)


def error(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()["error"]
    assert isinstance(body, dict)
    return body


# --- caps --------------------------------------------------------------------------------------------------------


def test_a_prompt_over_the_cap_is_413_naming_it_in_under_a_second(guarded: LiveServer) -> None:
    body = json.dumps(chat("x" * 900_000, TINY)).encode()  # ~1 MB, just under the body limit: the prompt cap refuses it
    start = time.monotonic()
    response = httpx.post(
        f"{guarded.v1}/chat/completions", content=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    took = time.monotonic() - start
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "prompt_too_large"
    assert "max_prompt_chars" in response.json()["error"]["message"]
    assert took < 1.0, f"took {took:.2f} s"
    assert pii_guard(guarded).pieces_analyzed == 0


def test_the_text_completions_prompt_is_capped_too(guarded: LiveServer) -> None:
    with pytest.raises(openai.APIStatusError) as err:
        client(guarded).completions.create(model=TINY, prompt="y" * 40_000, max_tokens=2)
    assert err.value.status_code == 413 and error(err.value)["param"] == "prompt"


def test_thirty_thousand_tiny_messages_are_refused_at_once(guarded: LiveServer) -> None:
    messages = [{"role": "user", "content": "a"}] * 30_000
    response = httpx.post(
        f"{guarded.v1}/chat/completions", json={"model": TINY, "messages": messages, "max_tokens": 2}, timeout=30
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "too_many_inputs"
    assert "max_messages" in response.json()["error"]["message"]


def test_moderation_over_its_caps(guarded: LiveServer) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client(guarded, max_retries=0).moderations.create(input=["hello"] * 65)
    assert "max_moderation_inputs" in error(err.value)["message"]
    with pytest.raises(openai.APIStatusError) as large:
        client(guarded, max_retries=0).moderations.create(input=["z" * 20_000, "z" * 20_000])
    assert large.value.status_code == 413 and "max_moderation_chars" in error(large.value)["message"]


# --- a prompt that can never fit: 400 before admission, never a 429 to retry --------------------------------------


def test_a_prompt_that_never_fits_is_400_and_the_client_does_not_retry(guarded: LiveServer) -> None:
    # The gateway's default limits are on (in memory): before, this got 429 + Retry-After: 60, retried twice.
    start = time.monotonic()
    with pytest.raises(openai.BadRequestError) as err:
        client(guarded).chat.completions.create(model=TINY, messages=[{"role": "user", "content": "hello " * 3000}])
    took = time.monotonic() - start
    assert error(err.value)["code"] == "context_length_exceeded"
    assert "Retry-After" not in err.value.response.headers
    assert took < 30, f"took {took:.1f} s: the client retried"
    assert pii_guard(guarded).pieces_analyzed == 0  # refused before any guard work


# --- the deadline ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "status"), [("default", 503), ("observe", 200)], ids=["fail_closed", "fail_open"])
def test_a_guard_past_its_deadline_is_a_guard_error(tiny_checkpoint: Path, policy: str, status: int) -> None:
    server = serve(tiny_checkpoint, deadline=0.05, default_policy=policy)
    try:
        response = httpx.post(f"{server.v1}/chat/completions", json=chat(BIG[:20_000]), timeout=60)
        assert response.status_code == status, response.text
        if status == 503:
            assert response.json()["error"]["code"] == "guardrail_unavailable"
            assert int(response.headers["Retry-After"]) >= 1
        else:  # fail_open: through, and the error is recorded
            errors = [d for d in response.json()["guardrails"]["input"] if d.get("error")]
            assert any(d["guard"] == "pii" and "TimeoutError" in d["error"] for d in errors), errors
    finally:
        server.stop()


# --- cancellation and the bounded queue ---------------------------------------------------------------------------


def open_request(server: LiveServer, payload: dict[str, Any]) -> socket.socket:
    body = json.dumps(payload).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    sock.sendall(head + body)
    return sock


def drain_bulk_lane(guardrails: Guardrails) -> None:
    """Return once every guard-bulk thread has finished what it was running (each must pick up one barrier job)."""
    workers = guardrails._bulk._max_workers
    barrier = threading.Barrier(workers)
    jobs = [guardrails._bulk.submit(barrier.wait, 60) for _ in range(workers)]
    for job in jobs:
        job.result(timeout=120)


def test_guard_work_stops_when_the_client_leaves(guarded: LiveServer) -> None:
    guard, gate = pii_guard(guarded), guards_of(guarded).gate
    total = len(pieces(len(BIG)))
    before = guard.pieces_analyzed
    sock = open_request(guarded, chat(BIG))
    wait_until(lambda: guard.pieces_analyzed > before, timeout=60)
    sock.close()
    wait_until(lambda: gate.active == 0, timeout=60)  # the screening was cancelled and gave its slot back
    drain_bulk_lane(guards_of(guarded))  # the piece in progress is done; no other one may start after it
    done = guard.pieces_analyzed - before
    drain_bulk_lane(guards_of(guarded))
    assert guard.pieces_analyzed - before == done, "guard work went on after the client left"
    assert done < total, f"all {total} pieces were analysed although the client left after the first"


def test_a_full_guard_queue_refuses_at_once_with_retry_after(tiny_checkpoint: Path) -> None:
    server = serve(tiny_checkpoint, screenings=1, max_queued=0)
    gate, guard = guards_of(server).gate, pii_guard(server)
    try:
        sock = open_request(server, chat(BIG))
        wait_until(lambda: gate.active == 1 and guard.pieces_analyzed > 0, timeout=60)
        with pytest.raises(openai.APIStatusError) as err:
            client(server, max_retries=0).chat.completions.create(
                model=WIDE, messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
        assert gate.active == 1, "refused only after the running screening ended"
        assert err.value.status_code == 503 and error(err.value)["code"] == "guardrails_busy"
        assert int(err.value.response.headers["Retry-After"]) >= 1
        sock.close()
        wait_until(lambda: gate.active == 0, timeout=60)
        reply = client(server, max_retries=0).chat.completions.create(
            model=WIDE, messages=[{"role": "user", "content": "hi"}], max_tokens=2
        )
        assert reply.choices
    finally:
        server.stop()
