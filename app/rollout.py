"""Versions of a served model: the stable one and, when the registry names one, a candidate (a canary) that gets a
share of the traffic.

The share is sticky: a hash of the model name and the request's OpenAI ``user`` (else its API key id) decides,
so one user keeps seeing one version while the split holds (requests with neither are split per request). Each
version keeps its own engine; responses, response records and audit lines say which version answered
(``model_version``), so feedback can be compared per version (``guardserve feedback report``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from guardserve.models.registry import ServedModel

_BUCKETS = 10_000  # percent with two decimals


@dataclass(frozen=True)
class Canary:
    served: ServedModel
    percent: float  # of the model's traffic, 0-100


def version_key(name: str, version: str) -> str:
    """One version of one model, as a key (``guardserve-tiny@v2``)."""
    return f"{name}@{version}"


def bucket(name: str, sticky: str) -> int:
    """Where ``sticky`` falls for this model, 0 .. 9,999 (stable across processes and restarts)."""
    digest = hashlib.blake2b(f"{name}\0{sticky}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _BUCKETS


def choose(stable: ServedModel, canary: Canary | None, sticky: str) -> ServedModel:
    """The version that answers a request whose sticky key is ``sticky``."""
    if canary is None or canary.percent <= 0:
        return stable
    if canary.percent >= 100 or bucket(stable.name, sticky) < canary.percent * _BUCKETS / 100:
        return canary.served
    return stable
