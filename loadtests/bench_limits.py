"""Rate-limit overhead: admission latency (one Lua round trip) and gateway req/s with keys and limits on vs off.

    .venv/bin/python loadtests/bench_limits.py [--redis redis://127.0.0.1:6379/0] [--admissions 5000]
                                               [--seconds 10] [--concurrency 32]

1. Admission latency: ``RedisLimiter.acquire`` (key + tenant scopes; requests/min, tokens/min and concurrency
   limits), sequentially and 32 at a time, then the whole ``RateLimitAdmission.admit`` (exact prompt count with a
   real tokenizer + the limiter). Settlements run too but are not timed. Keys use a random prefix, deleted after.
2. Gateway throughput: a gateway process (1 worker) in front of a fast fake upstream process, non-streaming
   completions from ``--concurrency`` keep-alive connections for ``--seconds``: limits off (no keys, no limits)
   then on (a key verified per request, limits in Redis).

The load generator shares the machine's cores with the gateway, the fake upstream and Redis: read the req/s as
a comparison between the two modes, not as the gateway's capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from guardserve.app.auth.service import KeyService  # noqa: E402
from guardserve.app.auth.store import RedisKeyStore  # noqa: E402
from guardserve.app.context import RequestContext  # noqa: E402
from guardserve.app.limits.admission import RateLimitAdmission  # noqa: E402
from guardserve.app.limits.memory import MemoryLimiter  # noqa: E402
from guardserve.app.limits.model import Ask, RateLimiter, Scope  # noqa: E402
from guardserve.app.limits.redis_limiter import RedisLimiter  # noqa: E402
from guardserve.app.limits.settings import Limits, LimitSettings  # noqa: E402
from guardserve.app.store.backend import RedisBackend  # noqa: E402
from guardserve.app.store.connection import connect  # noqa: E402
from guardserve.app.store.settings import RedisSettings  # noqa: E402
from guardserve.models.engine import ChatMessage, GenerationRequest, SamplingParams  # noqa: E402
from guardserve.models.registry import ModelEntry, ServedModel  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

LIMITS = Limits(requests_per_minute=10**8, tokens_per_minute=10**12, concurrent=10**6)
PEPPER = "bench-pepper-" + "x" * 32


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, samples: list[float]) -> None:
    ms = [s * 1000 for s in samples]
    print(f"| {name} | {len(ms)} | {pct(ms, 0.5):.3f} | {pct(ms, 0.99):.3f} | {statistics.fmean(ms):.3f} |")


async def limiter_latency(limiter: RateLimiter, n: int, concurrency: int) -> list[float]:
    samples: list[float] = []
    scopes = (Scope("key", "benchkey0001", LIMITS), Scope("tenant", "bench", LIMITS))

    async def one() -> None:
        ask = Ask(uuid.uuid4().hex, "bench", scopes, 300)
        start = time.perf_counter()
        decision = await limiter.acquire(ask)
        samples.append(time.perf_counter() - start)
        assert decision.allowed and decision.lease is not None
        await limiter.release(decision.lease, 120)

    for _ in range(50):  # warm up: connections, script cache
        await one()
    samples.clear()
    for i in range(0, n, concurrency):
        await asyncio.gather(*(one() for _ in range(min(concurrency, n - i))))
    return samples


async def admission_latency(backend: RedisBackend, checkpoint: Path, n: int) -> list[float]:
    admission = RateLimitAdmission(RedisLimiter(backend, 30), LimitSettings(key_defaults=LIMITS))
    served = ServedModel(
        ModelEntry(name="m", engine="openai", url="http://x/v1", context_length=4096, tokenizer=checkpoint),
        None,
        4096,
        True,
        0,
    )  # type: ignore[arg-type]
    messages = (ChatMessage("system", "You are a helpful assistant."), ChatMessage("user", "What is 12 + 30? " * 8))
    request = GenerationRequest("r", "m", SamplingParams(max_tokens=256), messages=messages)
    samples = []
    for i in range(n + 50):
        ctx = RequestContext(request_id=str(i), route="/v1/chat/completions", key_id="benchkey0002", tenant="bench")
        start = time.perf_counter()
        await admission.admit(ctx, served, request)
        if i >= 50:
            samples.append(time.perf_counter() - start)
        ctx.prompt_tokens, ctx.completion_tokens = 40, 100
        await ctx.finish()
    return samples


async def latency_section(url: str, n: int) -> None:
    prefix = f"gs-bench-{uuid.uuid4().hex[:8]}:"
    settings = RedisSettings(url=url, prefix=prefix, timeout_ms=1000)  # type: ignore[arg-type]
    backend = RedisBackend(connect(settings), settings)
    print("\n### Admission latency (ms)\n")
    print("| what | admissions | p50 | p99 | mean |\n|---|---|---|---|---|")
    try:
        redis_limiter = RedisLimiter(backend, 30)
        report("Redis limiter, one at a time", await limiter_latency(redis_limiter, n, 1))
        began = time.perf_counter()
        concurrent = await limiter_latency(redis_limiter, n, 32)
        rate = len(concurrent) / (time.perf_counter() - began)
        report("Redis limiter, 32 at a time (latency includes queueing)", concurrent)
        report("in-memory limiter (fallback), one at a time", await limiter_latency(MemoryLimiter(), n, 1))
        with tempfile.TemporaryDirectory() as tmp:
            from guardserve.models.untrained import build_untrained_checkpoint

            checkpoint = build_untrained_checkpoint(Path(tmp) / "ckpt", size="default")
            report("whole admission: exact prompt count + Redis", await admission_latency(backend, checkpoint, n))
        print(f"\nRedis limiter, 32 at a time: {rate:,.0f} admissions/s (+ as many settlements) in one process")
    finally:
        await backend.aclose()
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


# --- gateway throughput -------------------------------------------------------------------------------------


async def keep_alive_client(
    port: int, body: bytes, key: str | None, deadline: float, out: list[tuple[int, float]]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"POST /v1/completions HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(head)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            out.append((status, time.perf_counter() - start))
    finally:
        writer.close()


async def drive(
    port: int, body: bytes, key: str | None, seconds: float, concurrency: int, results: list[tuple[int, float]]
) -> None:
    await keep_alive_client(port, body, key, time.perf_counter() + 1, [])  # warm up for 1 s
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(keep_alive_client(port, body, key, deadline, results) for _ in range(concurrency)))


def start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    import httpx

    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{cmd} did not start")


async def make_key(url: str, prefix: str) -> str:
    settings = RedisSettings(url=url, prefix=prefix)  # type: ignore[arg-type]
    backend = RedisBackend(connect(settings), settings)
    key, _ = await KeyService(RedisKeyStore(backend), PEPPER).create("bench", limits=LIMITS)
    await backend.aclose()
    return key


def throughput_section(url: str, seconds: float, concurrency: int) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GUARDSERVE_")}
    up_port = free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_upstream", "--port", str(up_port)],
        cwd=ROOT,
        env=base,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    entry = {"name": "fake", "engine": "openai", "url": f"http://127.0.0.1:{up_port}/v1", "context_length": 4096}
    body = json.dumps({"model": "fake", "prompt": "Say something short.", "max_tokens": 16}).encode()
    prefix = f"gs-bench-{uuid.uuid4().hex[:8]}:"
    print(f"\n### Gateway throughput ({concurrency} keep-alive connections, {seconds:.0f} s each, 1 worker)\n")
    print("| limits | requests | req/s | p50 ms | p99 ms | statuses |\n|---|---|---|---|---|---|")
    try:
        for mode in ("off", "on", "off", "on"):  # alternated: the machine's load drifts
            port = free_port()
            env = base | {"GUARDSERVE_MODELS": json.dumps([entry]), "GUARDSERVE_LOG_LEVEL": "warning"}
            env |= {"GUARDSERVE_GUARDRAILS__ENABLED": "false"}  # the limits' cost alone
            key = None
            if mode == "off":
                env |= {"GUARDSERVE_AUTH__ENABLED": "false", "GUARDSERVE_LIMITS__ENABLED": "false"}
            else:
                key = asyncio.run(make_key(url, prefix))
                env |= {
                    "GUARDSERVE_AUTH__PEPPER": PEPPER,
                    "GUARDSERVE_AUTH__DEV_KEY": "false",
                    "GUARDSERVE_REDIS__URL": url,
                    "GUARDSERVE_REDIS__PREFIX": prefix,
                    "GUARDSERVE_LIMITS__KEY_DEFAULTS": LIMITS.model_dump_json(),
                }
            cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "guardserve.app.main:create_app_from_env",
                "--factory",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ]
            gateway = start(cmd, env, port)
            try:
                results: list[tuple[int, float]] = []
                began = time.perf_counter()
                asyncio.run(drive(port, body, key, seconds, concurrency, results))
                took = time.perf_counter() - began - 1
                latencies = [lat * 1000 for _, lat in results]
                statuses: dict[int, int] = {}
                for status, _ in results:
                    statuses[status] = statuses.get(status, 0) + 1
                print(
                    f"| {mode} | {len(results)} | {len(results) / took:.0f} | {pct(latencies, 0.5):.1f} | "
                    f"{pct(latencies, 0.99):.1f} | {statuses} |"
                )
            finally:
                gateway.terminate()
                gateway.wait()
    finally:
        upstream.terminate()
        upstream.wait()
        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--admissions", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    asyncio.run(latency_section(args.redis, args.admissions))
    throughput_section(args.redis, args.seconds, args.concurrency)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
