"""Slow clients: a body that stops arriving gets a 408 in the OpenAI envelope and frees its slot, however many do
it at once, and /health keeps answering meanwhile."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from guardserve.app.main import create_app
from guardserve.app.settings import Settings
from guardserve.models.registry import ModelEntry
from tests.conftest import NO_GUARDS, TINY
from tests.support.metrics import scrape
from tests.support.servers import LiveServer, serve_in_thread, wait_until

SLOW = 40  # clients that send part of a body, then nothing


@pytest.fixture(scope="module")
def gateway(tiny_checkpoint: Path) -> Iterator[LiveServer]:
    entry = ModelEntry(name=TINY, engine="cpu", checkpoint=tiny_checkpoint)
    server = serve_in_thread(create_app(Settings(models=[entry], guardrails=NO_GUARDS, body_timeout=5.0)))
    yield server
    server.stop()


def stalled(server: LiveServer) -> socket.socket:
    """Headers promising 1,000 bytes, then 20 of them."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    )
    sock.sendall(head.encode() + b'{"model": "tiny", "m')
    return sock


def answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_stalled_body_gets_a_408_and_frees_its_slot(gateway: LiveServer) -> None:
    inflight = "guardserve_inflight_requests{}"
    socks = [stalled(gateway) for _ in range(SLOW)]
    wait_until(
        lambda: scrape(f"{gateway.url}/metrics").get(inflight) == SLOW,
        timeout=30,
        interval=0.2,
        what="the stalled requests in flight",
    )
    try:
        started = time.monotonic()
        health = httpx.get(f"{gateway.url}/health", timeout=30)
        assert health.status_code == 200 and time.monotonic() - started < 1.0
        for sock in socks:
            status, body = answer(sock)
            assert status == 408
            assert body["error"]["code"] == "request_timeout"  # type: ignore[index]
    finally:
        for sock in socks:
            sock.close()
    wait_until(
        lambda: scrape(f"{gateway.url}/metrics").get(inflight) == 0,
        timeout=30,
        interval=0.2,
        what="no request left in flight",
    )
    chat = {"model": TINY, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    assert httpx.post(f"{gateway.v1}/chat/completions", json=chat, timeout=60).status_code == 200


def test_a_body_dripping_a_byte_at_a_time_is_cut_off_at_the_deadline(gateway: LiveServer) -> None:
    """Each byte arrives well within any per-read timeout; the whole body never would: 408 at the body deadline."""
    sock = stalled(gateway)
    stop = threading.Event()

    def drip() -> None:
        while not stop.wait(0.5):
            try:
                sock.sendall(b" ")
            except OSError:
                return

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        started = time.monotonic()
        status, body = answer(sock)
        assert status == 408, body
        assert body["error"]["code"] == "request_timeout"  # type: ignore[index]
        assert time.monotonic() - started >= 4.0  # the 5 s deadline, not a per-read timeout (generous either way)
    finally:
        stop.set()
        dripper.join(timeout=30)
        sock.close()
