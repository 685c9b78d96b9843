"""Nothing acknowledged is lost: a burst of 500 feedbacks, then kill -9 of the gateway and of a test-owned Redis
(AOF, ``appendfsync everysec`` as in production), restart both: every acknowledged feedback id is in its tenant's
Stream exactly once, exported exactly once by ``guardserve feedback export``, and readable through the API.
Redis down: 503 ``feedback_unavailable`` with Retry-After."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from guardserve.app.feedback import layout
from guardserve.app.feedback.export import RATINGS_FILE
from tests.conftest import TINY
from tests.support.access import ADMIN_KEY, PEPPER, start_gateways
from tests.support.processes import ServerProcess, clean_env
from tests.support.redis import RedisProcess
from tests.support.servers import wait_until
from tests.support.waits import SUBPROCESS_S

BURST = 500
RESPONSES = 10
KEYS = BURST // RESPONSES  # each key rates each response once: 500 distinct feedbacks
PREFIX = "gs-dur:"


def gateway_env(redis_url: str, checkpoint: Path) -> dict[str, str]:
    return {
        "GUARDSERVE_MODELS": json.dumps([{"name": TINY, "engine": "cpu", "checkpoint": str(checkpoint)}]),
        "GUARDSERVE_AUTH__ENABLED": "true",
        "GUARDSERVE_AUTH__PEPPER": PEPPER,
        "GUARDSERVE_AUTH__ADMIN_KEY": ADMIN_KEY,
        "GUARDSERVE_AUTH__DEV_KEY": "false",
        "GUARDSERVE_LIMITS__ENABLED": "false",
        "GUARDSERVE_GUARDRAILS__ENABLED": "false",
        "GUARDSERVE_REDIS__URL": redis_url,
        "GUARDSERVE_REDIS__PREFIX": PREFIX,
        "GUARDSERVE_OBSERVABILITY__AUDIT_LOG": "off",
    }


def kill9(gateway: ServerProcess) -> None:
    gateway.process.kill()
    gateway.process.wait(timeout=30)


async def burst(url: str, keys: list[str], responses: list[str]) -> list[str]:
    """Every key rates every response, 64 at a time; the ids of the 201s."""
    limit = asyncio.Semaphore(64)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def rate(key: str, response_id: str, n: int) -> str | None:
            """As a client does: a 503 (busy, e.g. scrubbing on a loaded machine) is retried with the same
            Idempotency-Key after Retry-After; only a 201 is an acknowledgement."""
            for _ in range(20):
                async with limit:
                    r = await client.post(
                        "/v1/feedback",
                        json={"response_id": response_id, "rating": 1 + n % 5, "comment": f"burst {n}"},
                        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": f"burst-{n}"},
                    )
                if r.status_code != 503:
                    break
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))
            return str(r.json()["id"]) if r.status_code == 201 else None

        jobs = [rate(k, r, i * RESPONSES + j) for i, k in enumerate(keys) for j, r in enumerate(responses)]
        return [i for i in await asyncio.gather(*jobs) if i is not None]


def new_key(url: str, admin: dict[str, str]) -> str:
    """A user key; a 503 (the fresh Redis not answering yet on a loaded machine) is retried until a deadline."""
    created: list[httpx.Response] = []

    def made() -> bool:
        created.append(httpx.post(f"{url}/admin/keys", json={"tenant": "acme"}, headers=admin, timeout=30))
        assert created[-1].status_code in (201, 503), created[-1].text
        return created[-1].status_code == 201

    wait_until(made, timeout=60, interval=0.5, what="an API key")
    return str(created[-1].json()["key"])


@pytest.mark.slow
def test_no_acknowledged_feedback_lost_across_gateway_and_redis_kill_9(
    tmp_path: Path, tiny_checkpoint: Path, needs_redis_server: None
) -> None:
    store = RedisProcess(tmp_path, fsync="everysec")
    store.start()
    env = gateway_env(store.url, tiny_checkpoint)
    gateway = start_gateways(1, env, tmp_path)[0]
    try:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        keys = [new_key(gateway.url, admin) for _ in range(KEYS)]
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=keys[0], max_retries=0)
        responses = [
            client.chat.completions.create(model=TINY, messages=[{"role": "user", "content": f"q{i}"}], max_tokens=2).id
            for i in range(RESPONSES)
        ]
        redis_client: Any = store.client()
        wait_until(lambda: all(redis_client.exists(layout.owner_key(PREFIX, r)) for r in responses), what="records")
        acked = asyncio.run(burst(gateway.url, keys, responses))
        kill9(gateway)  # right after the burst
        assert len(acked) == BURST, f"only {len(acked)} of {BURST} acknowledged"

        store.kill()  # kill -9 Redis too, then restart it on its AOF
        store.start()
        restarted: Any = store.client()
        entries = restarted.xrange(layout.stream_key(PREFIX, "acme"))
        in_stream = [f[b"id"].decode() for _, f in entries if f[b"op"] == b"add"]
        missing = set(acked) - set(in_stream)
        assert not missing, f"{len(missing)} acknowledged feedbacks lost"
        assert len(in_stream) == len(set(in_stream)) == BURST  # each once

        # the export (the real CLI, through its consumer group) has every acknowledged feedback exactly once
        out = tmp_path / "export"
        export = [
            sys.executable,
            "-m",
            "guardserve.app.cli",
            "feedback",
            "export",
            "--out",
            str(out),
            "--redis-url",
            store.url,
        ]
        exported = subprocess.run(
            export,
            env={**clean_env(), "GUARDSERVE_REDIS__PREFIX": PREFIX},
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_S,
        )
        assert exported.returncode == 0, exported.stderr[-2000:]
        lines = (out / RATINGS_FILE).read_text().splitlines()
        ids = [json.loads(line)["feedback_id"] for line in lines]
        assert sorted(ids) == sorted(acked), "every acknowledged feedback exported once"

        (tmp_path / "again").mkdir()
        gateway = start_gateways(1, env, tmp_path / "again")[0]
        with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {keys[0]}"}, timeout=30) as c:
            for feedback_id in acked[:: BURST // 10]:  # any key of the tenant reads its feedback
                got = c.get(f"/v1/feedback/{feedback_id}")
                assert got.status_code == 200 and got.json()["id"] == feedback_id
            mine = c.get("/v1/feedback", params={"response_id": responses[0]}).json()["data"]
            assert len(mine) == KEYS  # every key's feedback on it, after both restarts

            store.kill()  # Redis gone: refused loudly, never silently dropped
            down = c.post("/v1/feedback", json={"response_id": responses[1], "rating": "up"})
            assert down.status_code == 503, down.text
            assert down.json()["error"]["code"] == "feedback_unavailable"  # the key itself was verified recently
            assert int(down.headers["retry-after"]) >= 1
    finally:
        gateway.stop()
        store.kill()
