"""Connection hygiene of the real server (`guardserve serve`, app/guarded_protocol.py), with bounded local floods.

Floods come from other loopback addresses (127.0.0.2 …) than the probes (127.0.0.1), as they would from another
client. A connection refused by a cap is reset at once (RST: ``ConnectionResetError``); one dropped at the header
deadline is closed (FIN: ``recv`` gives ``b""``): the two are told apart without timing anything.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from guardserve.app.auth import keys
from tests.support.gateway_process import GatewayProcess, start_gateway_process
from tests.support.processes import free_port
from tests.support.waits import SETTLE_S, wait_until

PER_IP = 40  # unauthenticated connections one IP may hold
HEADER_S = 3.0  # header deadline
MAX_REQUESTS = 3
ADMIN = keys.generate()[1]

pytestmark = pytest.mark.slow


def start(where: Path, **settings: object) -> GatewayProcess:
    registry = where / "registry.yaml"  # an upstream that is never called: no model to load, a fast start
    registry.write_text(
        f"models:\n  m:\n    engine: openai\n    url: http://127.0.0.1:{free_port()}/v1\n    upstream_model: m\n"
        "    context_length: 512\n",
        encoding="utf-8",
    )
    env = {
        "GUARDSERVE_AUTH__ENABLED": "true",
        "GUARDSERVE_AUTH__ADMIN_KEY": ADMIN,
        "GUARDSERVE_AUTH__DEV_KEY": "false",
        "GUARDSERVE_GUARDRAILS__ENABLED": "false",
        "GUARDSERVE_BODY_TIMEOUT": "600",
    } | {f"GUARDSERVE_CONNECTIONS__{k.upper()}": str(v) for k, v in settings.items()}
    return start_gateway_process(["--registry", str(registry)], env, where / "gateway.log")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gateway = start(
        tmp_path_factory.mktemp("connections"),
        header_timeout=HEADER_S,
        keep_alive_timeout=300,  # nothing closes for idling between requests here
        max_unauthenticated_per_ip=PER_IP,
        max_requests=MAX_REQUESTS,
    )
    yield gateway
    gateway.stop()


def connect(gateway: GatewayProcess, source: str) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(SETTLE_S)
    sock.connect(("127.0.0.1", gateway.port))
    return sock


def connect_or_reset(gateway: GatewayProcess, source: str) -> socket.socket | None:
    """A connection, or None when the server's reset (a cap refusing it) came before ``connect`` returned: on a
    busy machine the gateway can accept and reset an over-cap socket before the client's ``connect`` call ends."""
    try:
        return connect(gateway, source)
    except ConnectionResetError:
        return None


def ending(sock: socket.socket) -> str:
    """How the server ended this connection: "reset" (refused by a cap) or "closed" (FIN), after what it sent."""
    try:
        while sock.recv(65536):
            pass
        return "closed"
    except ConnectionResetError:
        return "reset"


def ended(socks: list[socket.socket], timeout: float) -> list[str]:
    """Wait (up to ``timeout``) until every socket is readable, i.e. the server ended it; then how."""
    pending, deadline = list(socks), time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        readable, _, _ = select.select(pending, [], [], 0.5)
        pending = [s for s in pending if s not in readable]
    assert not pending, f"{len(pending)} connections still open after {timeout} s"
    return [ending(s) for s in socks]


def health_seconds(gateway: GatewayProcess) -> float:
    start = time.monotonic()
    assert httpx.get(gateway.url + "/health", timeout=SETTLE_S).status_code == 200
    return time.monotonic() - start


def request(sock: socket.socket, path: str, key: str | None) -> int:
    """One keep-alive GET on ``sock``; its status."""
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(v for k, v in (h.split(b":", 1) for h in head.split(b"\r\n")[1:]) if k.lower() == b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1])


def test_an_idle_flood_is_capped_per_ip_dropped_at_the_deadline_and_health_keeps_answering(
    gateway: GatewayProcess,
) -> None:
    opened = [connect_or_reset(gateway, "127.0.0.2") for _ in range(10 * PER_IP)]
    flood = [sock for sock in opened if sock is not None]
    seconds = [health_seconds(gateway) for _ in range(5)]  # while the flood is held
    endings = ended(flood, timeout=HEADER_S + 120) + ["reset"] * opened.count(None)
    assert endings.count("closed") == PER_IP  # held until the header deadline, then closed
    assert endings.count("reset") == 9 * PER_IP  # beyond the cap: refused at once
    print(f"/health during a {len(flood)}-socket idle flood: max {max(seconds) * 1000:.1f} ms")
    assert max(seconds) < 5  # the bar is 1 s; a loaded CI machine gets slack, the figure is printed


def test_slow_headers_are_dropped_at_a_total_deadline_however_the_bytes_trickle(gateway: GatewayProcess) -> None:
    sock = connect(gateway, "127.0.0.3")
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    start, answer = time.monotonic(), b""
    while time.monotonic() - start < HEADER_S + 120:
        try:
            sock.sendall(b"a")  # a byte every 0.2 s: never idle, never done
        except OSError:
            break
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            try:
                answer = sock.recv(65536)
            except ConnectionResetError:
                answer = b""
            break
    else:
        pytest.fail("a trickling header was never dropped")
    assert not answer.startswith(b"HTTP/")  # dropped, not answered
    assert health_seconds(gateway) < 5


def test_connections_that_authenticated_leave_the_per_ip_cap(gateway: GatewayProcess) -> None:
    held = []
    for _ in range(PER_IP + 10):  # more than the cap, each one authenticated before the next opens
        sock = connect(gateway, "127.0.0.4")
        assert request(sock, "/v1/models", ADMIN) == 200
        held.append(sock)
    anonymous = []
    for _ in range(PER_IP):  # unauthenticated ones (a 401 does not count as authenticated) up to the cap
        sock = connect(gateway, "127.0.0.4")
        assert request(sock, "/v1/models", None) == 401
        anonymous.append(sock)
    refused = connect(gateway, "127.0.0.4")
    assert ended([refused], timeout=SETTLE_S) == ["reset"]
    for sock in held + anonymous:
        sock.close()


def test_requests_beyond_the_cap_get_a_503_envelope_and_health_still_answers(gateway: GatewayProcess) -> None:
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {ADMIN}\r\nContent-Length: 1000\r\n\r\n"
    )
    stalled = []
    for _ in range(MAX_REQUESTS):  # in progress until their bodies arrive (never, here)
        sock = connect(gateway, "127.0.0.5")
        sock.sendall(head.encode() + b'{"model": "m", "mess')
        stalled.append(sock)
    client = httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=SETTLE_S)

    def busy() -> bool:
        return client.get("/v1/models").status_code == 503

    wait_until(busy, what="a request beyond the cap refused")
    answer = client.get("/v1/models")
    assert answer.headers["retry-after"] == "1"
    assert json.loads(answer.content)["error"]["code"] == "busy"
    assert health_seconds(gateway) < 5  # exempt
    for sock in stalled:
        sock.close()
    wait_until(lambda: client.get("/v1/models").status_code == 200, what="the slots freed")


def test_at_the_open_connection_cap_the_longest_idle_connection_makes_room(tmp_path: Path) -> None:
    cap = 30
    gateway = start(tmp_path, max_open=cap, header_timeout=600)
    try:
        idle = [connect(gateway, f"127.0.1.{1 + n % 10}") for n in range(cap)]  # many IPs: no per-IP cap applies
        assert health_seconds(gateway) < 5  # a prompt client still gets in ...
        assert ended(idle[:1], timeout=SETTLE_S) == ["reset"]  # ... in place of the longest-waiting idle one
        readable, _, _ = select.select(idle[1:], [], [], 0)
        # The others are still held. A loaded loop may not yet have seen the start-up readiness probe's connection
        # close, so it may have counted one more and made room twice: then the second-longest idle went too.
        assert readable in ([], [idle[1]]), [idle.index(s) for s in readable]
        assert ended(readable, timeout=SETTLE_S) == ["reset"] * len(readable)
        for sock in idle:
            sock.close()
    finally:
        gateway.stop()
