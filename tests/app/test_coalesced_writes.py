"""CoalescedWrites (app/guarded_protocol.py): a response cycle's writes of one event-loop turn leave in one send;
and the real server (``guardserve serve``) answers whole and streamed requests through it as before."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from guardserve.app.guarded_protocol import CoalescedWrites
from tests.support.fake_upstream import FakeUpstream
from tests.support.gateway_process import GatewayProcess, start_with_registry
from tests.support.servers import LiveServer, serve_in_thread


class Transport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name == "peername" else None


def view() -> tuple[Transport, CoalescedWrites]:
    transport = Transport()
    return transport, CoalescedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]


async def next_turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_one_turns_writes_leave_together_at_its_end_and_the_next_turns_apart() -> None:
    transport, writes = view()
    writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
    writes.write(b"body")
    assert transport.sent == []  # nothing yet: the turn is not over
    await next_turn()
    assert transport.sent == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    writes.write(b"event 1")
    await next_turn()
    writes.write(b"event 2")
    await next_turn()
    assert transport.sent[1:] == [b"event 1", b"event 2"]  # a later turn's write waits for no one


async def test_close_sends_what_is_pending_first_abort_drops_it() -> None:
    transport, writes = view()
    writes.write(b"head")
    writes.write(b"tail")
    writes.close()
    assert transport.sent == [b"headtail"] and transport.closed
    await next_turn()  # the scheduled flush finds nothing and writes nothing to the closed transport
    assert transport.sent == [b"headtail"]
    transport, writes = view()
    writes.write(b"never")
    writes.abort()
    await next_turn()
    assert transport.sent == [] and transport.aborted


async def test_a_transport_closed_meanwhile_is_not_written_and_the_rest_is_the_transports() -> None:
    transport, writes = view()
    writes.write(b"late")
    transport.close()  # the client went away before the turn ended
    await next_turn()
    assert transport.sent == []
    assert writes.is_closing() and writes.get_extra_info("peername") == ("127.0.0.1", 1)


@pytest.fixture(scope="module")
def upstream() -> Iterator[LiveServer]:
    server = serve_in_thread(FakeUpstream(reply="one two three four five six", chunks=(4,)))  # type: ignore[arg-type]
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(upstream: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    registry = (
        f"models:\n  fake:\n    engine: openai\n    url: {upstream.url}/v1\n    upstream_model: fake\n"
        "    context_length: 512\n"
    )
    gateway = start_with_registry(
        tmp_path_factory.mktemp("coalesced"), registry, {"GUARDSERVE_GUARDRAILS__ENABLED": "false"}
    )
    yield gateway
    gateway.stop()


@pytest.mark.slow
def test_the_real_server_answers_whole_and_streamed_requests_on_one_connection(gateway: GatewayProcess) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=60)
    messages: Any = [{"role": "user", "content": "count"}]
    for _ in range(3):  # keep-alive: the same pooled connection each time
        whole = client.chat.completions.create(model="fake", messages=messages)
        assert whole.choices[0].message.content == "one two three four five six"
        stream = client.chat.completions.create(model="fake", messages=messages, stream=True)
        pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
        assert "".join(pieces) == "one two three four five six" and len([p for p in pieces if p]) > 1
    models = client.models.list()
    assert [m.id for m in models.data] == ["fake"]
