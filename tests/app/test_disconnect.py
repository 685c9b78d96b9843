"""Client disconnect cancels the generation: engine in-flight back to 0, both modes, both engines.

Each request asks for 2,000 tokens with ignore_eos; the client hangs up early. The engines' counters tell a
cancelled generation from one that ran to its end, so the wait itself can be generous (the machine may be loaded);
the time it took is printed.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import pytest

from tests.conftest import TINY
from tests.support.metrics import delta, key, settled
from tests.support.servers import EngineProcess, LiveServer, wait_until

LONG = {
    "model": TINY,
    "messages": [{"role": "user", "content": "talk"}],
    "max_tokens": 2000,
    "ignore_eos": True,
}


def hang_up(server: LiveServer, stream: bool, generating: Callable[[], bool]) -> None:
    """Send a request on a raw socket and close it: after the first bytes (stream) or, without a stream, once
    ``generating()`` says the engine that generates has the request in flight."""
    body = json.dumps({**LONG, "stream": stream}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body)
        if stream:
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        else:
            wait_until(generating, what="the request generating")


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_cpu_engine_disconnect(gateway: LiveServer, stream: bool) -> None:
    engine = gateway.app.state.models[TINY].engine
    aborted, completed = engine.stats.aborted, engine.stats.completed
    hang_up(gateway, stream, generating=lambda: engine.inflight > 0)
    took = wait_until(lambda: engine.inflight == 0)
    assert engine.stats.aborted == aborted + 1, "the generation ended without being cancelled"
    assert engine.stats.completed == completed
    print(f"cpu engine, stream={stream}: in-flight 0 after {took * 1000:.0f} ms")


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_http_engine_disconnect_aborts_upstream(
    http_gateway: LiveServer, upstream: EngineProcess, stream: bool
) -> None:
    engine = http_gateway.app.state.models[TINY].engine
    before = settled(f"{upstream.url}/metrics")
    hang_up(http_gateway, stream, generating=lambda: upstream.inflight() > 0)
    took_gateway = wait_until(lambda: engine.inflight == 0)
    took_upstream = wait_until(lambda: upstream.inflight() == 0)
    # the upstream's own gateway saw its client (our HTTP engine) leave mid-generation: a 499, and no answer
    moved = delta(before, settled(f"{upstream.url}/metrics"))
    answered = {k: v for k, v in moved.items() if k.startswith("guardserve_requests_total{") and "/v1/" in k}
    route = "/v1/chat/completions"
    assert answered == {key("guardserve_requests_total", model=upstream.name, route=route, status="499"): 1.0}, moved
    print(f"http engine, stream={stream}: gateway {took_gateway * 1000:.0f} ms, upstream {took_upstream * 1000:.0f} ms")
