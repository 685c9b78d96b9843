"""``guardserve feedback …``: the feedback export (settings from ``GUARDSERVE_*``, like ``guardserve keys``) and
the report on an export.

guardserve feedback export --out DIR [--since ISO-date|epoch] [--tenant NAME] [--redis-url URL] [--group NAME]

It prints one JSON line of counts (:class:`app.feedback.export.ExportResult`); the exit status is 0 when the pass
finished, 1 when Redis failed mid-way (rerun it: nothing acknowledged is lost), 2 for a usage or setup error.

guardserve feedback report --export DIR --out OUT [--model NAME] [--stable SHA --candidate SHA] [--bucket day|hour]

It writes OUT/report.md, report.json and two PNGs (:mod:`app.feedback.report`), prints each verdict, and exits 0,
or 2 for a usage error (no export folder, a version that is not there).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from guardserve.app.feedback import layout


def add_parser(sub: Any) -> None:
    feedback = sub.add_parser("feedback", help="feedback: export it for the trainer")
    fsub = feedback.add_subparsers(dest="feedback_command", required=True)
    export = fsub.add_parser("export", help="one export pass of the feedback streams into DIR (resumable)")
    export.add_argument("--out", type=Path, required=True, help="the export folder (created; reused by later passes)")
    export.add_argument("--since", help="only feedback created since: epoch seconds or an ISO date/time (UTC)")
    export.add_argument("--tenant", help="one tenant only (default: every tenant with feedback)")
    export.add_argument("--redis-url", help="default: GUARDSERVE_REDIS__URL")
    export.add_argument("--group", default=layout.EXPORT_GROUP, help="consumer group (a new one re-exports all)")
    export.add_argument("--batch-size", type=_positive, default=500, help="stream entries per read and commit")
    report = fsub.add_parser("report", help="ratings per model version of an export, candidate vs stable")
    report.add_argument("--export", type=Path, required=True, help="a `guardserve feedback export` folder")
    report.add_argument("--out", type=Path, required=True, help="where report.md, report.json and the PNGs go")
    report.add_argument("--model", help="one served model only (default: every model rated)")
    report.add_argument("--stable", help="the stable version: a checkpoint sha256 prefix or a version label")
    report.add_argument("--candidate", help="the candidate version: a checkpoint sha256 prefix or a version label")
    report.add_argument("--bucket", choices=["day", "hour"], default="day", help="time buckets (UTC)")


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"{text}: between 1 and 100000")
    return value


def run(args: argparse.Namespace) -> int:
    if args.feedback_command == "report":
        return _report(args)
    return asyncio.run(_export(args))


def _report(args: argparse.Namespace) -> int:
    from guardserve.app.feedback.report import ReportError, build_report

    try:
        report = build_report(
            args.export, args.out, model=args.model, stable=args.stable, candidate=args.candidate, bucket=args.bucket
        )
    except ReportError as exc:
        print(f"guardserve feedback report: {exc}", file=sys.stderr)
        return 2
    for comparison in report["comparisons"]:
        print(f"{comparison['candidate']} vs {comparison['stable']}: {comparison['verdict']}")
    if report["plots"]["skipped"]:
        print(f"PNG skipped: {report['plots']['skipped']}", file=sys.stderr)
    print(f"wrote {args.out / 'report.md'}")
    return 0


async def _export(args: argparse.Namespace) -> int:
    from pydantic import SecretStr
    from redis.exceptions import RedisError

    from guardserve.app.feedback.export import ExportError, FeedbackExporter, parse_since
    from guardserve.app.settings import Settings
    from guardserve.app.store.connection import connect

    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        print(f"guardserve feedback export: {exc}", file=sys.stderr)
        return 2
    redis = Settings().redis
    if args.redis_url:
        redis = redis.model_copy(update={"url": SecretStr(args.redis_url)})
    if redis.url is None:
        print("guardserve feedback export: no Redis (set GUARDSERVE_REDIS__URL or --redis-url)", file=sys.stderr)
        return 2
    # A batch command on a busy server needs more than the gateway's per-request budget.
    redis = redis.model_copy(update={"timeout_ms": max(redis.timeout_ms, 10_000.0)})
    try:
        client = connect(redis)
    except ValueError as exc:
        print(f"guardserve feedback export: {exc}", file=sys.stderr)
        return 2
    exporter = FeedbackExporter(
        client, redis.prefix, args.out, tenant=args.tenant, since=since, group=args.group, batch_size=args.batch_size
    )
    try:
        result = await exporter.run()
    except ExportError as exc:
        print(f"guardserve feedback export: {exc}", file=sys.stderr)
        return 2
    except RedisError as exc:
        print(f"guardserve feedback export: Redis failed ({type(exc).__name__}); rerun to resume", file=sys.stderr)
        return 1
    finally:
        await client.aclose()
    print(json.dumps(result.to_json(), sort_keys=True))
    return 0
