"""Client disconnect cancels the generation: engine in-flight back to 0 within 1 s, both modes, both engines.

Each request asks for 2,000 tokens with ignore_eos (about 2 s of generation for the tiny model); the client
hangs up after a fraction of that, so only a real cancellation brings the count to 0 in time.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.conftest import TINY
from tests.support.servers import EngineProcess, LiveServer, wait_until

LONG = {
    "model": TINY,
    "messages": [{"role": "user", "content": "talk"}],
    "max_tokens": 2000,
    "ignore_eos": True,
}


def hang_up(server: LiveServer, stream: bool, wait_for_bytes: bool) -> None:
    """Send a request on a raw socket and close it: after the first bytes (stream) or mid-generation."""
    body = json.dumps({**LONG, "stream": stream}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body)
        if wait_for_bytes:
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        else:
            time.sleep(0.3)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_cpu_engine_disconnect(gateway: LiveServer, stream: bool) -> None:
    engine = gateway.app.state.models[TINY].engine
    aborted, completed = engine.stats.aborted, engine.stats.completed
    hang_up(gateway, stream, wait_for_bytes=stream)
    took = wait_until(lambda: engine.inflight == 0, timeout=1.0)
    assert engine.stats.aborted == aborted + 1, "the generation ended without being cancelled"
    assert engine.stats.completed == completed
    print(f"cpu engine, stream={stream}: in-flight 0 after {took * 1000:.0f} ms")


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_http_engine_disconnect_aborts_upstream(
    http_gateway: LiveServer, upstream: EngineProcess, stream: bool
) -> None:
    engine = http_gateway.app.state.models[TINY].engine
    before = upstream.ready()["models"][upstream.name]
    hang_up(http_gateway, stream, wait_for_bytes=stream)
    took_gateway = wait_until(lambda: engine.inflight == 0, timeout=1.0)
    took_upstream = wait_until(lambda: upstream.inflight() == 0, timeout=1.0)
    after = upstream.ready()["models"][upstream.name]
    assert after["aborted"] == before["aborted"] + 1, "the upstream generation was not cancelled"
    assert after["completed"] == before["completed"]
    print(f"http engine, stream={stream}: gateway {took_gateway * 1000:.0f} ms, upstream {took_upstream * 1000:.0f} ms")
