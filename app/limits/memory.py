"""The same limits in process memory: dev mode without Redis, and the fail-open fallback while Redis is down.

Same algorithm and answers as the Lua script (:mod:`guardserve.app.limits.lua`): a sliding-window log per scope for
requests/min and tokens/min, a set of slots for concurrency, a counter per UTC day. As the fail-open fallback it
is built with ``divisor`` = the number of gateway processes, so that N processes together stay within the limit.
Everything runs on the event loop without awaiting, so each admission is atomic here too.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from guardserve.app.limits.model import WINDOW_MS, Ask, Decision, Lease, LimitName, Scope, ScopeUsage, Usage
from guardserve.app.limits.redis_limiter import utc_day


@dataclass
class _Window:
    entries: deque[tuple[int, str]] = field(default_factory=deque)  # (admitted at ms, lease id), oldest first
    tokens: dict[str, int] = field(default_factory=dict)  # lease id -> tokens counted
    total: int = 0

    def expire(self, now: int) -> None:
        while self.entries and self.entries[0][0] <= now - WINDOW_MS:
            _, lease = self.entries.popleft()
            self.total -= self.tokens.pop(lease, 0)

    def reset_ms(self, now: int) -> int:
        return max(0, self.entries[0][0] + WINDOW_MS - now) if self.entries else 0

    def retry_for_tokens(self, need: int, now: int) -> int:
        freed = 0
        for at, lease in self.entries:
            freed += self.tokens.get(lease, 0)
            if freed >= need:
                return max(0, at + WINDOW_MS - now)
        return WINDOW_MS


class MemoryLimiter:
    name = "local"

    def __init__(self, divisor: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.divisor = divisor
        self._clock = clock
        self._windows: dict[tuple[str, str, str], _Window] = {}
        self._slots: dict[tuple[str, str, str], set[str]] = {}
        self._days: dict[tuple[str, str, str, str], int] = {}

    @property
    def degraded(self) -> bool:
        return False

    @property
    def active(self) -> int:
        return sum(len(s) for s in self._slots.values())

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def _scope(self, ask: Ask, scope: Scope) -> Scope:
        return replace(scope, limits=scope.limits.divided(self.divisor)) if self.divisor > 1 else scope

    async def acquire(self, ask: Ask) -> Decision:
        now = int(self._clock() * 1000)
        day, day_reset_ms = utc_day()
        scopes = tuple(self._scope(ask, s) for s in ask.scopes)
        refused: tuple[int, LimitName, int, bool] | None = None
        for i, scope in enumerate(scopes):
            name = (ask.tenant, scope.kind, scope.id)
            lim, cost = scope.limits, ask.tokens
            window = self._windows.setdefault(name, _Window())
            window.expire(now)
            if refused is not None:
                continue
            if lim.requests_per_minute and len(window.entries) + 1 > lim.requests_per_minute:
                refused = (i, "requests", window.reset_ms(now), False)
            elif lim.tokens_per_minute and cost > lim.tokens_per_minute:
                refused = (i, "tokens", 0, True)
            elif lim.tokens_per_minute and window.total + cost > lim.tokens_per_minute:
                need = window.total + cost - lim.tokens_per_minute
                refused = (i, "tokens", window.retry_for_tokens(need, now), False)
            elif lim.concurrent and len(self._slots.get(name, ())) >= lim.concurrent:
                refused = (i, "concurrent", 1000, False)
            elif lim.tokens_per_day and cost > lim.tokens_per_day:
                refused = (i, "tokens_per_day", 0, True)
            elif lim.tokens_per_day and self._days.get((*name, day), 0) + cost > lim.tokens_per_day:
                refused = (i, "tokens_per_day", day_reset_ms, False)
        if refused is None:
            for scope in scopes:
                self._record(ask, scope, now, day)
        usage = tuple(self._usage((ask.tenant, s.kind, s.id), now) for s in scopes)
        if refused is not None:
            index, limit, retry, too_large = refused
            return Decision(False, usage, None, index, limit, retry, too_large)
        return Decision(True, usage, Lease(replace(ask, scopes=scopes), self.name, day))

    def _record(self, ask: Ask, scope: Scope, now: int, day: str) -> None:
        name, lim = (ask.tenant, scope.kind, scope.id), scope.limits
        if lim.requests_per_minute or lim.tokens_per_minute:
            window = self._windows[name]
            window.entries.append((now, ask.lease_id))
            window.tokens[ask.lease_id] = ask.tokens
            window.total += ask.tokens
        if lim.concurrent:
            self._slots.setdefault(name, set()).add(ask.lease_id)
        if lim.tokens_per_day:
            self._days[(*name, day)] = self._days.get((*name, day), 0) + ask.tokens

    def _usage(self, name: tuple[str, str, str], now: int) -> ScopeUsage:
        window = self._windows.get(name)
        if window is None:
            return ScopeUsage(0, 0, 0)
        return ScopeUsage(len(window.entries), window.total, window.reset_ms(now))

    async def usage(self, tenant: str, scopes: Sequence[tuple[Literal["key", "tenant"], str]]) -> list[Usage]:
        now, day = int(self._clock() * 1000), utc_day()[0]
        out = []
        for kind, id in scopes:
            name = (tenant, kind, id)
            window = self._windows.get(name)
            live = [(at, lease) for at, lease in window.entries if at > now - WINDOW_MS] if window else []
            tokens = sum(window.tokens.get(lease, 0) for _, lease in live) if window else 0
            out.append(Usage(len(live), tokens, len(self._slots.get(name, ())), self._days.get((*name, day), 0)))
        return out

    async def release(self, lease: Lease, used_tokens: int) -> None:
        ask, delta = lease.ask, max(0, used_tokens) - lease.ask.tokens
        for scope in ask.scopes:
            name = (ask.tenant, scope.kind, scope.id)
            window = self._windows.get(name)
            if window is not None and ask.lease_id in window.tokens:
                window.tokens[ask.lease_id] += delta
                window.total += delta
            slots = self._slots.get(name)
            if slots is not None:
                slots.discard(ask.lease_id)
                if not slots:
                    del self._slots[name]
            if scope.limits.tokens_per_day and (*name, lease.day) in self._days:
                self._days[(*name, lease.day)] = max(0, self._days[(*name, lease.day)] + delta)
        self._prune()

    def _prune(self) -> None:
        """Drop idle scopes' empty windows and past days now and then."""
        if len(self._windows) > 10_000:
            now = int(self._clock() * 1000)
            for name, window in list(self._windows.items()):
                window.expire(now)
                if not window.entries:
                    del self._windows[name]
        if len(self._days) > 10_000:
            today = utc_day()[0]
            self._days = {k: v for k, v in self._days.items() if k[3] == today}
