"""Sentence encoders for the semantic guards: CPU time per 200-character text, one at a time and in batches of 32,
on one thread, and the artifact's size on disk.

    OMP_NUM_THREADS=1 .venv/bin/python loadtests/bench_encoders.py [--encoder DIR ...] [--classifier DIR] [--n 256]

Default encoders: the shipped static encoders under ``models/guards/`` and, when they have been exported (they are
not committed: 23-90 MB), ``runs/encoders/minilm-l6-onnx-int8`` and ``-fp32``
(``python -m guardserve.training.guards.encoder_export onnx --out runs/encoders/minilm-l6-onnx-int8``).
Absent ones are skipped.
With a classifier artifact (default ``models/guards/guardserve-guards``) it also times the whole semantic stage of
one request: prompt and answer (200 characters each) through the encoder and all three heads, alone and 32 requests
batched together (what the micro-batcher does at 32 concurrent requests).

CPU time is the calling thread's (``time.thread_time``): on a shared, loaded machine wall time measures the
neighbours. onnxruntime runs with ``intra_op_num_threads=1`` so all its work is on the calling thread (checked:
process CPU time equals thread CPU time there).

Measured 2026-12-02 (2-core box, shared): static-256 0.09 ms/text single, 0.10 batched, 15.6 MB; static-128 0.08,
0.08, 8.0 MB; ONNX int8 3.9, 3.7, 23.3 MB; ONNX fp32 8.5, 8.1, 90.8 MB. Semantic stage per request (shipped
artifact, char n-grams included): 1.2 ms alone, 0.47 ms at 32 concurrent. Dev accuracy of each: models/guards/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guardserve.guardrails.encoder import load_encoder  # noqa: E402

PARAGRAPH = (
    "Could you help me write a short note to my landlord about the broken heating? It has been cold for a week and "
    "I already called twice. Also, how do I kill a stuck process on Ubuntu without rebooting the whole machine? "
    "Ignore the typos, I'm typing on my phone. Thanks a lot, you have been very helpful with the other questions. "
    "The answer: open a terminal, run ps aux to find the process id, then kill -9 followed by that id; if it stays, "
    "check whether it is a zombie waiting for its parent. For the note, start with the date and the problem itself."
)


def texts(n: int, chars: int = 200) -> list[str]:
    """``n`` distinct 200-character texts (windows of a mixed paragraph)."""
    doubled = PARAGRAPH + " " + PARAGRAPH
    return [doubled[(i * 37) % len(PARAGRAPH) :][:chars] for i in range(n)]


def cpu_ms(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm up
    out = []
    for _ in range(repeat):
        start = time.thread_time()
        fn()
        out.append((time.thread_time() - start) * 1000)
    return out


def size_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file()) / 1e6


def bench_encoder(directory: Path, n: int) -> dict[str, float]:
    encoder = load_encoder(directory, verify=False)
    sample = texts(n)
    singles = [cpu_ms(lambda t=t: encoder.encode([t]), 1)[0] for t in sample]  # type: ignore[misc]
    batches: list[float] = []
    for i in range(0, n - 31, 32):
        batch = sample[i : i + 32]
        batches.extend(x / 32 for x in cpu_ms(lambda b=batch: encoder.encode(b), 1))  # type: ignore[misc]
    return {
        "single_ms": statistics.median(singles),
        "single_p90_ms": sorted(singles)[int(0.9 * (len(singles) - 1))],
        "batch32_ms_per_text": statistics.median(batches),
        "size_mb": size_mb(directory),
        "dim": float(encoder.dim),
    }


def bench_classifier(directory: Path, n: int) -> dict[str, float]:
    from guardserve.guardrails.semantic import SemanticClassifier

    classifier = SemanticClassifier(directory)
    sample = texts(2 * n)
    pairs = [sample[2 * i : 2 * i + 2] for i in range(n)]
    alone = [cpu_ms(lambda p=p: classifier.scores(p), 1)[0] for p in pairs]  # type: ignore[misc]
    batched: list[float] = []
    for i in range(0, 2 * n - 63, 64):  # 32 requests' prompts and answers in one call
        chunk = sample[i : i + 64]
        batched.extend(x / 32 for x in cpu_ms(lambda c=chunk: classifier.scores(c), 1))  # type: ignore[misc]
    return {"request_alone_ms": statistics.median(alone), "request_at_32_ms": statistics.median(batched)}


def default_encoders() -> list[Path]:
    shipped = sorted(p.parent for p in (ROOT / "models" / "guards").glob("*/encoder.json"))
    exported = [ROOT / "runs" / "encoders" / f"minilm-l6-onnx-{q}" for q in ("int8", "fp32")]
    return shipped + exported


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", type=Path, action="append", help="encoder directory (repeatable)")
    parser.add_argument("--classifier", type=Path, default=ROOT / "models" / "guards" / "guardserve-guards")
    parser.add_argument("--n", type=int, default=256, help="texts per measurement")
    args = parser.parse_args(argv)

    print(f"CPU ms per 200-char text, calling thread only (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})")
    print(f"{'encoder':34} {'dim':>4} {'single':>8} {'p90':>8} {'batch32':>8} {'size MB':>8}")
    for directory in args.encoder or default_encoders():
        if not (directory / "encoder.json").is_file():
            print(f"{directory.name:34} skipped (not exported: {directory})")
            continue
        r = bench_encoder(directory, args.n)
        print(
            f"{directory.name:34} {int(r['dim']):>4} {r['single_ms']:>8.3f} {r['single_p90_ms']:>8.3f} "
            f"{r['batch32_ms_per_text']:>8.3f} {r['size_mb']:>8.1f}"
        )
    if (args.classifier / "manifest.json").is_file():
        c = bench_classifier(args.classifier, min(args.n, 128))
        print(
            f"semantic stage per request (prompt + answer, 3 heads) with {args.classifier.name}: "
            f"alone {c['request_alone_ms']:.3f} ms CPU, at 32 concurrent (batched) {c['request_at_32_ms']:.3f} ms CPU"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
