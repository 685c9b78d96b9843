"""A dead upstream under load: requests are refused at once (503 + Retry-After, no connect attempt each) once the
circuit breaker opens, and service resumes when the upstream is back, without restarting the gateway."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from guardserve.app.main import create_app
from guardserve.app.settings import HTTPSettings, Settings
from guardserve.models.registry import ModelEntry
from tests.conftest import NO_GUARDS
from tests.support.servers import serve_in_thread, start_engine_process, wait_until

BODY = {"model": "flaky", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def test_a_dead_upstream_is_refused_at_once_and_recovers_without_a_restart(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    upstream = start_engine_process(tiny_checkpoint, name="flaky", log=tmp_path / "up.log")
    entry = ModelEntry(name="flaky", engine="openai", url=upstream.v1, context_length=2048)
    http = HTTPSettings(breaker_failures=3, breaker_cooldown=1.0)
    gateway = serve_in_thread(create_app(Settings(models=[entry], guardrails=NO_GUARDS, http=http)))
    seen: Counter[str] = Counter()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                response = client.post(f"{gateway.v1}/chat/completions", json=BODY)
                if response.status_code == 503:
                    error = response.json()["error"]
                    assert error["code"] == "engine_unavailable" and int(response.headers["retry-after"]) >= 1
                    seen["open" if "circuit open" in error["message"] else "refused"] += 1
                elif response.status_code == 502:  # in flight when the upstream died: cut, not refused
                    assert response.json()["error"]["code"] == "upstream_error"
                    seen["cut"] += 1
                else:
                    assert response.status_code == 200, response.text
                    seen["ok"] += 1

    restarted = None
    try:
        with ThreadPoolExecutor(4) as pool:
            workers = [pool.submit(load) for _ in range(4)]
            wait_until(lambda: seen["ok"] >= 8, timeout=120, interval=0.1, what="answers before the kill")
            upstream.process.kill()
            upstream.process.wait(timeout=60)
            wait_until(
                lambda: seen["open"] >= 20, timeout=120, interval=0.1, what=f"refusals by the open breaker {seen}"
            )
            ok_while_down = seen["ok"]
            restarted = start_engine_process(
                tiny_checkpoint, name="flaky", log=tmp_path / "up2.log", port=upstream.port
            )
            wait_until(lambda: seen["ok"] >= ok_while_down + 8, timeout=120, interval=0.1, what="answers again")
            stop.set()
            for worker in workers:
                worker.result()  # re-raises a worker's failed assertion
        # the breaker answered most refusals: far fewer connection attempts than requests while it was down
        assert seen["open"] > seen["refused"] and seen["cut"] <= 4, seen
    finally:
        stop.set()
        gateway.stop()
        upstream.stop()
        if restarted is not None:
            restarted.stop()
