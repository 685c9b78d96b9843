"""``guardserve keys …``: manage API keys in the Redis the gateway uses (settings from ``GUARDSERVE_*``).

guardserve keys create --tenant T [--role user|tenant_admin|admin] [--policy P] [--name N] [--expires-in S]
                       [--rpm N] [--tpm N] [--concurrent N] [--tokens-per-day N]
guardserve keys list [--tenant T] [--json]
guardserve keys revoke KEY_ID
guardserve keys rotate KEY_ID [--grace S]
guardserve keys generate          # a fresh key for GUARDSERVE_AUTH__ADMIN_KEY (nothing is stored)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from guardserve.app.auth import keys as keygen
from guardserve.app.auth.records import KeyRecord


def add_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="manage API keys (in Redis)")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    create = ksub.add_parser("create", help="create a key and print it (shown once)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--role", choices=["user", "tenant_admin", "admin"], default="user")
    create.add_argument("--policy", help="guardrail policy name (default: the gateway's default policy)")
    create.add_argument("--name", default="")
    create.add_argument("--expires-in", type=int, help="seconds until the key expires")
    create.add_argument("--rpm", type=int, help="requests per minute (0: unlimited; default: the key defaults)")
    create.add_argument("--tpm", type=int, help="tokens per minute")
    create.add_argument("--concurrent", type=int, help="concurrent requests")
    create.add_argument("--tokens-per-day", type=int, help="daily token quota (UTC day)")
    listing = ksub.add_parser("list", help="list keys")
    listing.add_argument("--tenant")
    listing.add_argument("--json", action="store_true")
    revoke = ksub.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")
    rotate = ksub.add_parser("rotate", help="replace a key by a new one with the same settings")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace", type=int, default=0, help="seconds the old key keeps working")
    ksub.add_parser("generate", help="print a fresh key (for the bootstrap admin secret); stores nothing")


def run(args: argparse.Namespace) -> int:
    if args.keys_command == "generate":
        print(keygen.generate()[1])
        return 0
    return asyncio.run(_run(args))


def _row(record: KeyRecord) -> str:
    expires = time.strftime("%Y-%m-%d %H:%M", time.gmtime(record.expires_at)) if record.expires_at else "-"
    state, policy = record.state(), record.policy or "(default)"
    return f"{record.id}  {record.tenant:<16} {record.role:<12} {policy:<12} {state:<8} {expires}  {record.name}"


async def _run(args: argparse.Namespace) -> int:
    from guardserve.app.access import Access, ConfigurationError
    from guardserve.app.limits.settings import Limits
    from guardserve.app.settings import Settings

    settings = Settings()
    if settings.redis.url is None:
        print(
            "guardserve keys: GUARDSERVE_REDIS__URL is not set. Without Redis, keys live inside the serving "
            "process; use its admin API (/admin/keys) or the key it printed at start-up.",
            file=sys.stderr,
        )
        return 2
    settings.auth.enabled, settings.limits.enabled = True, False
    try:
        access = Access.build(settings)
    except ConfigurationError as exc:
        print(f"guardserve keys: {exc}", file=sys.stderr)
        return 2
    service = access.keys
    assert service is not None
    try:
        if args.keys_command == "create":
            if args.policy and settings.guardrails.enabled:
                from guardserve.guardrails.policy import load_policies

                known = load_policies(settings.guardrails.policy_file).policies
                if args.policy not in known:
                    names = ", ".join(known)
                    print(f"guardserve keys: unknown policy {args.policy!r} (known: {names})", file=sys.stderr)
                    return 2
            limits = Limits(
                requests_per_minute=args.rpm,
                tokens_per_minute=args.tpm,
                concurrent=args.concurrent,
                tokens_per_day=args.tokens_per_day,
            )
            expires = int(time.time()) + args.expires_in if args.expires_in else None
            key, record = await service.create(args.tenant, args.role, args.policy, args.name, limits, expires)
            print(f"created {record.id} for tenant {record.tenant} (role {record.role}); the key, shown once:")
            print(key)
        elif args.keys_command == "list":
            records = await service.list(args.tenant)
            if args.json:
                print(json.dumps([r.public() for r in records], indent=2))
            else:
                for r in records:
                    print(_row(r))
        elif args.keys_command == "revoke":
            revoked = await service.revoke(args.key_id)
            if revoked is None:
                print(f"no key {args.key_id}", file=sys.stderr)
                return 1
            print(f"revoked {revoked.id} (tenant {revoked.tenant})")
        elif args.keys_command == "rotate":
            rotated = await service.rotate(args.key_id, args.grace)
            if rotated is None:
                print(f"no key {args.key_id}", file=sys.stderr)
                return 1
            key, record = rotated
            print(f"rotated {args.key_id} -> {record.id}; the new key, shown once:")
            print(key)
    except Exception as exc:
        from guardserve.app.store.backend import BackendUnavailableError

        if isinstance(exc, BackendUnavailableError):
            print(f"guardserve keys: Redis unavailable ({exc})", file=sys.stderr)
            return 1
        raise
    finally:
        await access.aclose()
    return 0
