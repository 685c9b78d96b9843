from __future__ import annotations

from guardserve.app.limits.headers import duration, rate_limit_headers
from guardserve.app.limits.model import Ask, Scope, ScopeUsage
from guardserve.app.limits.settings import Limits


def test_durations_read_like_openai() -> None:
    assert [duration(ms) for ms in (0, 20, 999, 1000, 1500, 59_999, 60_000, 360_000, 3_723_000)] == [
        "0ms", "20ms", "999ms", "1s", "1.5s", "59.999s", "1m0s", "6m0s", "1h2m3s",
    ]  # fmt: skip


def test_the_scope_with_least_room_is_reported() -> None:
    scopes = (
        Scope("key", "k", Limits(requests_per_minute=10, tokens_per_minute=1000)),
        Scope("tenant", "t", Limits(requests_per_minute=100, tokens_per_minute=500)),
    )
    usage = (ScopeUsage(4, 100, 30_000), ScopeUsage(50, 450, 12_000))
    headers = rate_limit_headers(Ask("l", "t", scopes, 0), usage)
    assert headers == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "6",
        "x-ratelimit-reset-requests": "30s",
        "x-ratelimit-limit-tokens": "500",
        "x-ratelimit-remaining-tokens": "50",
        "x-ratelimit-reset-tokens": "12s",
    }
    assert rate_limit_headers(Ask("l", "t", (Scope("key", "k", Limits(concurrent=2)),), 0), (usage[0],)) == {}
