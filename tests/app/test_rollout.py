"""Traffic split between a model's stable and candidate versions: the share, stickiness, the edges."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import cast

from guardserve.app.rollout import Canary, bucket, choose
from guardserve.models.engine import Engine
from guardserve.models.registry import ModelEntry, ServedModel


def served(version: str) -> ServedModel:
    entry = ModelEntry(name="m", engine="cpu", checkpoint=Path("/x"), label=version)
    return ServedModel(entry, cast(Engine, object()), 256, True, 0)


STABLE, CANDIDATE = served("v1"), served("v2")


def share(percent: float, users: int = 4000) -> float:
    canary = Canary(CANDIDATE, percent)
    return sum(choose(STABLE, canary, f"user-{i}") is CANDIDATE for i in range(users)) / users


def test_the_candidate_gets_about_its_share() -> None:
    assert 0.07 < share(10) < 0.13
    assert 0.45 < share(50) < 0.55


def test_the_edges_are_exact() -> None:
    assert share(0) == 0.0 and share(100) == 1.0
    assert choose(STABLE, None, "anyone") is STABLE


def test_a_user_keeps_their_version_and_a_larger_share_only_adds_users() -> None:
    small, large = Canary(CANDIDATE, 20), Canary(CANDIDATE, 40)
    for i in range(500):
        user = f"user-{i}"
        first = choose(STABLE, small, user)
        assert all(choose(STABLE, small, user) is first for _ in range(3))
        if first is CANDIDATE:  # growing the canary never moves a user back to stable
            assert choose(STABLE, large, user) is CANDIDATE


def test_buckets_are_the_same_in_another_process() -> None:
    # a keyed hash, not Python's per-process salted hash(): replicas and restarts agree on who gets the candidate
    code = "from guardserve.app.rollout import bucket; print([bucket('m', f'user-{i}') for i in range(20)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert other.stdout.strip() == str([bucket("m", f"user-{i}") for i in range(20)])
    assert [bucket("m", f"user-{i}") for i in range(20)] != [bucket("other", f"user-{i}") for i in range(20)]
