"""Issue 11: long runs without spaces streamed through the real gateway with the default guardrails, in front of a fake
OpenAI upstream that sends them in 1-6-character pieces. One such answer used to freeze the whole process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from guardserve.app.main import create_app
from guardserve.app.settings import GuardrailSettings, Settings
from guardserve.models.registry import ModelEntry
from tests.support.fake_upstream import FakeUpstream
from tests.support.long_runs import ANSWERS, RUNS, SECRETS
from tests.support.servers import LiveServer, serve_in_thread

MODEL = "upstream"


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[LiveServer, FakeUpstream]]:
    fake = FakeUpstream(MODEL, chunks=(1, 4, 2, 6, 3, 5))
    server = serve_in_thread(fake)  # type: ignore[arg-type]
    yield server, fake
    server.stop()


@pytest.fixture(scope="module")
def guarded(upstream: tuple[LiveServer, FakeUpstream]) -> Iterator[LiveServer]:
    """The gateway with the bundled default policy (output PII masked, NER on) in front of the fake upstream."""
    entry = ModelEntry(name=MODEL, engine="openai", url=upstream[0].v1, context_length=2048)
    server = serve_in_thread(create_app(Settings(models=[entry], guardrails=GuardrailSettings())))
    yield server
    server.stop()


class HealthPoller:
    """Polls /health from another thread for as long as it runs, recording every answer's latency."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set():
                start = time.monotonic()
                try:
                    status = http.get(f"{self.url}/health").status_code
                except httpx.HTTPError as exc:
                    self.failures.append(type(exc).__name__)
                else:
                    if status != 200:
                        self.failures.append(str(status))
                self.latencies.append(time.monotonic() - start)
                self._stop.wait(0.02)  # pacing between polls

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_a_long_run_streams_masked_while_health_answers_within_a_second(
    guarded: LiveServer, upstream: tuple[LiveServer, FakeUpstream], name: str
) -> None:
    answer = ANSWERS[name]
    assert len(RUNS[name]) > 512 and " " not in RUNS[name]
    upstream[1].reply = answer
    client = openai.OpenAI(base_url=guarded.v1, api_key="unused", max_retries=0, timeout=120)
    with HealthPoller(guarded.url) as health:
        chunks = list(
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "Show me the data."}], stream=True
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert len(text) == len(answer)  # masking keeps the length: nothing dropped, nothing doubled
    assert not any(secret in text for secret in SECRETS[name]), text
    assert text.endswith(answer.rsplit(" ", 1)[-1])  # the answer's last word arrived, untouched
    output = (chunks[-1].model_extra or {})["guardrails"]["output"]
    assert any(d["guard"] == "pii" and d["action"] == "mask" for d in output)
    # The gateway shares this process (and its GIL) with the client, the fake upstream and the poller, so on a loaded
    # machine one poll may be slow; a frozen event loop (the bug) fails every poll after it, never just a few.
    assert health.latencies and not health.failures
    latencies = sorted(health.latencies)
    assert latencies[int(0.95 * (len(latencies) - 1))] < 1.0 and latencies[-1] < 10.0, latencies[-5:]
