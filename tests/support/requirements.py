"""Parts a test needs from outside the project (the shared Redis, ``redis-server``, ``promtool``).

Outside CI a missing part skips the test and says how to get it; in CI (``CI`` set, as ``.ci/run`` does) it is a
failure, because ``.ci/run`` provides every one of them: nothing may skip there for a missing part.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def require(available: bool, what: str, how: str) -> None:
    if available:
        return
    if in_ci():
        pytest.fail(f"{what} is missing in CI: .ci/run must provide it ({how})")
    pytest.skip(f"{what} is not available ({how}); CI runs this test")
