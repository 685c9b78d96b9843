"""Input screenings under load (review of issue 11, P1-1): a burst of large prompts neither starves stream windows
nor makes every screening late. Real Presidio (patterns only, for speed); order and counters, never wall-clock time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from guardserve.guardrails.guards import PIIGuard, pieces
from guardserve.guardrails.pii.engine import PIIEngine
from guardserve.guardrails.policy import PolicyFile
from guardserve.guardrails.runtime import Guardrails, Policy
from guardserve.guardrails.types import Finding
from tests.support.waits import eventually

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")  # one per request: which request a piece is from

POLICIES = PolicyFile.model_validate(
    {
        "default": "p",
        "policies": {
            "p": {
                "input": {"pii": {"action": "pseudonymize", "ner": False}, "toxicity": {"action": "block"}},
                "output": {"pii": {"action": "mask", "ner": False}},
                "on_error": "fail_closed",
            }
        },
    }
)


class Recorder:
    """Wraps the shared engine's ``analyze``: one event per analysis, in the order the work started."""

    def __init__(self, engine: PIIEngine) -> None:
        self._analyze = engine.analyze
        self.events: list[tuple[str, str]] = []  # (a request's word, "stream" or "done:<word>"; thread name)
        self._lock = threading.Lock()

    def analyze(self, text: str) -> list[Finding]:
        who = next((w for w in WORDS if w in text), "stream")  # every input text and piece names its request
        with self._lock:
            self.events.append((who, threading.current_thread().name))
        return self._analyze(text)

    def mark(self, what: str) -> None:
        with self._lock:
            self.events.append((what, threading.current_thread().name))

    def index(self, what: str, last: bool = False) -> int:
        found = [i for i, (w, _) in enumerate(self.events) if w == what]
        assert found, f"no {what!r} event"
        return found[-1] if last else found[0]


@pytest.fixture
def guardrails() -> Iterator[Guardrails]:
    g = Guardrails(POLICIES, workers=4)  # 4 guard threads, a bulk lane of 2
    yield g
    g.close()


@pytest.fixture
def recorder(guardrails: Guardrails, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    policy = guardrails.policy()
    engine = next(g for g in policy.input_guards if isinstance(g, PIIGuard)).engine
    assert all(g.engine is engine for g in policy.output_guards if isinstance(g, PIIGuard))  # one shared engine
    rec = Recorder(engine)
    monkeypatch.setattr(engine, "analyze", rec.analyze)
    return rec


def message(word: str, chars: int = 128) -> str:
    return (f"The {word} team meets on Monday to plan the week, nothing more to say here. " * (chars // 60 + 1))[:chars]


async def screen_one(policy: Policy, word: str, messages: list[tuple[str, str]], rec: Recorder) -> None:
    outcome = await policy.screen_input(messages, None)
    assert outcome.blocked is None and not any(d.error for d in outcome.decisions), outcome.decisions
    rec.mark(f"done:{word}")


async def test_a_burst_of_max_size_prompts_neither_starves_a_stream_nor_interleaves(
    guardrails: Guardrails, recorder: Recorder
) -> None:
    policy = guardrails.policy()
    burst = WORDS[:4]
    # each at the caps: 256 messages of 128 characters (32,768 characters)
    prompts = {w: [("user", message(w)) for _ in range(256)] for w in burst}
    tasks = [asyncio.create_task(screen_one(policy, w, prompts[w], recorder)) for w in burst]
    await eventually(lambda: recorder.events, what="the input screenings to start")

    screen = policy.stream(None)
    answer = "Sure. The report goes to jane.doe@example.com today, and nothing else is new here. " * 6
    released = ""
    for i in range(0, len(answer), 7):
        released += (await screen.push(answer[i : i + 7])).text
    released += (await screen.close()).text
    await asyncio.gather(*tasks)

    # the stream's windows completed, screened (no timeout, no block) and on their own threads
    assert screen.blocked is None and not any(d.error for d in screen.decisions()), screen.decisions()
    assert len(released) == len(answer) and "@" not in released and released.count("*" * 20) == 6  # masked
    windows = [name for what, name in recorder.events if what == "stream"]
    assert len(windows) > 3 and all(name.startswith("guard-stream") for name in windows)
    # ... and did not queue behind the burst: its first window ran while the first input screening was under way.
    # (When it finishes depends on the GIL, which its own threads share with the burst's: on a loaded machine the
    # burst's first prompt may finish first. Queued behind the burst, it could not even start before that.)
    first_window = next(i for i, (what, _) in enumerate(recorder.events) if what == "stream")
    assert first_window < recorder.index(f"done:{burst[0]}"), "the stream waited for the input screenings"
    # the screenings finished in roughly arrival order: the first was done before the last analysed its last message
    last = burst[-1]
    assert recorder.index(f"done:{burst[0]}") < recorder.index(last, last=True)
    assert all(name.startswith("guard-bulk") for what, name in recorder.events if what in burst)


async def test_long_prompts_are_screened_in_arrival_order_not_piece_by_piece(
    guardrails: Guardrails, recorder: Recorder
) -> None:
    policy = guardrails.policy()
    burst = WORDS[:4]
    text = {w: message(w, 12_000) for w in burst}
    total = len(pieces(12_000))
    assert total >= 3
    await asyncio.gather(*(screen_one(policy, w, [("user", text[w])], recorder) for w in burst))
    order = [what for what, _ in recorder.events if what in burst]
    assert all(order.count(w) == total for w in burst)
    # two bulk threads: the first two requests run side by side; each later one starts only once a thread is free,
    # i.e. after an earlier request analysed all its pieces (piece-by-piece interleaving would start all four at once)
    first_of = {w: order.index(w) for w in burst}
    last_of = {w: len(order) - 1 - order[::-1].index(w) for w in burst}
    assert first_of[burst[2]] > min(last_of[burst[0]], last_of[burst[1]])
    # the fourth needs a second thread free: two of the three before it done (which two depends on the machine)
    assert first_of[burst[3]] > sorted(last_of[w] for w in burst[:3])[1]


async def test_cancelled_screenings_queued_behind_others_never_run(guardrails: Guardrails, recorder: Recorder) -> None:
    policy = guardrails.policy()
    burst = WORDS[:4]
    prompts = {w: [("user", message(w)) for _ in range(256)] for w in burst}
    tasks = {w: asyncio.create_task(screen_one(policy, w, prompts[w], recorder)) for w in burst}
    await eventually(lambda: recorder.events, what="the input screenings to start")
    for w in burst[2:]:  # queued behind the first two on the two bulk threads: their clients leave
        tasks[w].cancel()
    await asyncio.gather(*(tasks[w] for w in burst[:2]))
    for w in burst[2:]:
        with pytest.raises(asyncio.CancelledError):
            await tasks[w]
    started = {what for what, _ in recorder.events}
    assert not started & set(burst[2:]), "a cancelled request's queued guard work ran"
