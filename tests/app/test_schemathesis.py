"""Schemathesis over every route of the served OpenAPI schema, against the real gateway: zero 5xx, and answers
that match the schema (statuses, content types, bodies, headers).

The gateway runs as in production: keys in Redis (a valid admin key, so ``/admin`` is exercised), limits and the
bundled guardrails on, the tiny CPU checkpoint behind it. Each operation gets a bounded number of schema-valid and
schema-violating requests from a derandomized Hypothesis run (no shrinking), so the run is repeatable and bounded.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.result import Err, Ok
from schemathesis.generation.case import Case
from schemathesis.generation.modes import GenerationMode

from guardserve.app.settings import GuardrailSettings
from tests.support.access import ADMIN_KEY, secure_gateway
from tests.support.servers import LiveServer

pytestmark = pytest.mark.slow

EXAMPLES = 25  # per operation and mode: about 600 requests in all
MAX_TOKENS = 4  # generations are not what this is about: keep them short
MODEL = "tiny"  # the served name (secure_gateway)
# "Schema-valid request rejected" flags rules the schema cannot say (an empty prompt, 1..64 moderation inputs,
# a policy that must exist): those are 400s by design. "Schema-violating request accepted" flags what the gateway
# accepts on purpose beyond its schema (a JSON body whatever its Content-Type, as OpenAI does; unknown query
# parameters ignored); in full-suite runs it also reported one POST /admin/keys case that no run of this module
# alone reproduced. Bad input is tested case by case in test_errors.py and the routes' own tests; here the
# assertion is the issue's: no 5xx, and every answer in the documented shape.
EXCLUDED = ("positive_data_acceptance", "negative_data_rejection")


@pytest.fixture(scope="module")
def gateway(tiny_checkpoint: Path, shared_redis_url: str) -> Iterator[LiveServer]:
    with secure_gateway(tiny_checkpoint, shared_redis_url, guardrails=GuardrailSettings()) as (server, _):
        yield server


@pytest.fixture(scope="module")
def shared_redis_url() -> str:
    from tests.support.redis import SHARED_URL, shared_redis_available

    if not shared_redis_available():
        pytest.fail("no Redis on 127.0.0.1:6379 (start it: redis-server --daemonize yes --port 6379 --save '')")
    return SHARED_URL


def _served(case: Case[Any]) -> None:
    """Point a schema-valid body at the served model half of the time (a random name is a 404 before the guards
    and the engine run) and cap the generation length."""
    body: Any = case.body
    if not isinstance(body, dict):
        return
    fingerprint = zlib.crc32(repr(sorted(body, key=str)).encode("utf-8", "replace"))  # stable across processes
    if isinstance(body.get("model"), str) and fingerprint % 2 == 0:
        body["model"] = MODEL
    for name in ("max_tokens", "max_completion_tokens"):
        if isinstance(body.get(name), int) and not isinstance(body[name], bool) and body[name] > MAX_TOKENS:
            body[name] = MAX_TOKENS
    if "messages" in body and "max_tokens" not in body and "max_completion_tokens" not in body:
        body["max_tokens"] = MAX_TOKENS


@dataclass
class Findings:
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    mismatches: dict[tuple[str, str], str] = field(default_factory=dict)


def _exercise(
    operation: Any, mode: GenerationMode, url: str, headers: dict[str, str], checks: list[Any], found: Findings
) -> None:
    """``EXAMPLES`` requests of ``mode`` against one operation, every check on each answer."""
    label = operation.label

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,  # a fixed seed: the same requests every run
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],  # no shrinking: bounded time
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case[Any]) -> None:
        if mode is GenerationMode.POSITIVE:
            _served(case)
        response = case.call(base_url=url, headers=headers, timeout=60)
        found.statuses[response.status_code] += 1
        if response.status_code >= 500:
            curl = case.as_curl_command(headers)[:1500]
            found.server_errors.append(f"{response.status_code} {label}: {response.text[:300]}\n  {curl}")
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except BaseException as group:  # schemathesis raises a FailureGroup (a BaseExceptionGroup)
            for failure in getattr(group, "exceptions", (group,)):
                key = (label, str(getattr(failure, "title", type(failure).__name__)))
                curl = case.as_curl_command(headers)[:1500]
                found.mismatches.setdefault(key, f"{response.status_code} {response.text[:200]}\n  {curl}")

    try:
        run()
    except hypothesis.errors.Unsatisfiable:  # nothing violates the schema of a route without inputs
        assert mode is GenerationMode.NEGATIVE, label


def test_no_5xx_and_answers_match_the_schema(gateway: LiveServer) -> None:
    load_all_checks()
    checks = [c for c in CHECKS.get_all() if getattr(c, "__name__", "") not in EXCLUDED]
    schema = schemathesis.openapi.from_url(f"{gateway.url}/openapi.json")
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    found = Findings()
    results = list(schema.get_all_operations())
    assert not [r for r in results if isinstance(r, Err)], "the served schema does not load"
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) >= 12, [op.label for op in operations]
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _exercise(operation, mode, gateway.url, headers, checks, found)

    assert sum(found.statuses.values()) >= 300, found.statuses
    assert found.statuses[200] + found.statuses[201] > 20, f"too few requests got through: {found.statuses}"
    assert not found.mismatches, "\n".join(f"{k}: {v}" for k, v in found.mismatches.items())
    assert not found.server_errors, "\n".join(found.server_errors[:20])
