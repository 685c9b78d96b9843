"""``x-ratelimit-*`` headers as OpenAI sends them, and its duration format ("1s", "6m0s", "20ms")."""

from __future__ import annotations

from guardserve.app.limits.model import Ask, ScopeUsage


def duration(ms: int) -> str:
    if ms < 1000:
        return f"{max(0, ms)}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m{rest}s"


def rate_limit_headers(ask: Ask, usage: tuple[ScopeUsage, ...]) -> dict[str, str]:
    """For requests and tokens, the headers of the scope (key or tenant) with the least room left."""
    headers: dict[str, str] = {}
    for name in ("requests", "tokens"):
        best: tuple[int, int, int] | None = None  # remaining, limit, reset
        for scope, used in zip(ask.scopes, usage, strict=True):
            limit = scope.limits.requests_per_minute if name == "requests" else scope.limits.tokens_per_minute
            count = used.requests if name == "requests" else used.tokens
            if limit:
                candidate = (max(0, limit - count), limit, used.reset_ms)
                if best is None or candidate[0] < best[0]:
                    best = candidate
        if best is not None:
            headers[f"x-ratelimit-limit-{name}"] = str(best[1])
            headers[f"x-ratelimit-remaining-{name}"] = str(best[0])
            headers[f"x-ratelimit-reset-{name}"] = duration(best[2])
    return headers
