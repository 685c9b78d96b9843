"""The guard stage's bounded queue, and the pieces long texts are screened in."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardserve.guardrails.gate import GuardrailsBusyError, ScreeningGate
from guardserve.guardrails.guards import PIECE_OVERLAP, PIIGuard, pieces
from guardserve.guardrails.pii.engine import PIIEngine
from guardserve.guardrails.types import Action


class Holders:
    """Tasks that take a slot of ``gate``, note their name, and hold it until ``release`` is set."""

    def __init__(self, gate: ScreeningGate) -> None:
        self.gate = gate
        self.ran: list[str] = []
        self.release = asyncio.Event()

    async def _hold(self, name: str) -> None:
        async with self.gate.slot():
            self.ran.append(name)
            await self.release.wait()

    async def start(self, name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self._hold(name))
        await asyncio.sleep(0)  # one loop turn: the new task runs up to its slot or its wait in the queue
        return task


async def test_a_full_queue_refuses_at_once_and_a_freed_slot_goes_to_the_first_waiter() -> None:
    gate = ScreeningGate(slots=1, max_queued=1)
    holders = Holders(gate)
    first = await holders.start("first")
    second = await holders.start("second")
    assert gate.queued == 1
    with pytest.raises(GuardrailsBusyError):
        async with gate.slot():
            pass
    holders.release.set()
    await asyncio.gather(first, second)
    assert holders.ran == ["first", "second"] and gate.active == 0 and gate.queued == 0


async def test_a_cancelled_waiter_never_runs_and_leaves_the_queue() -> None:
    gate = ScreeningGate(slots=1, max_queued=4)
    holders = Holders(gate)
    first = await holders.start("first")
    waiter = await holders.start("cancelled")
    assert gate.queued == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.queued == 0
    holders.release.set()
    await first
    assert holders.ran == ["first"] and gate.active == 0


async def test_waiting_past_the_timeout_is_busy() -> None:
    gate = ScreeningGate(slots=1, max_queued=1)
    async with gate.slot():
        with pytest.raises(GuardrailsBusyError):
            async with gate.slot(0.01):
                pass
    assert gate.active == 0 and gate.queued == 0


@given(st.integers(min_value=0, max_value=50_000))
def test_pieces_cover_the_text_and_own_every_position_once(length: int) -> None:
    parts = pieces(length)
    assert parts[0][0] == 0 and parts[-1][1] == length and parts[-1][2] == length
    for (start, end, owned), (next_start, _, _) in itertools.pairwise(parts):
        assert end - next_start == PIECE_OVERLAP  # consecutive pieces overlap by PIECE_OVERLAP
        # the owned ranges' boundary is in the middle of the overlap: context on both sides of it, in both pieces
        assert owned - next_start == PIECE_OVERLAP // 2 and end - owned == PIECE_OVERLAP - PIECE_OVERLAP // 2
        assert start < owned <= end
    owned_ends = [owned for _, _, owned in parts]
    assert owned_ends == sorted(owned_ends) and len(set(owned_ends)) == len(owned_ends)  # they tile [0, length)


async def test_a_long_text_finds_each_entity_once_even_across_piece_boundaries() -> None:
    guard = PIIGuard(PIIEngine(), Action.MASK, executor=None, hash_salt="s" * 16)
    filler = "The weather is fine today and nothing happens. "
    text = ""
    emails = []
    for n, (_, _, owned) in enumerate(pieces(20_000)[:-1]):
        # an e-mail straddling the boundary where this piece's owned range ends
        text += filler * ((owned - 10 - len(text)) // len(filler) + 1)
        text = text[: owned - 10]
        address = f" user{n}@example.com "
        emails.append(address.strip())
        text += address
    text += filler * 20
    inspection = await guard.inspect(text)
    found = [text[f.start : f.end] for f in inspection.findings if f.entity_type == "EMAIL_ADDRESS"]
    assert sorted(found) == sorted(emails)
    assert guard.pieces_analyzed > 1
