"""Exact dedupe (normalised text hash) and near dedupe (MinHash LSH over word shingles, datasketch)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from guardserve.training.recipe import NearDedupeConfig
from guardserve.training.records import Record

_WORDS = re.compile(r"\w+|[^\w\s]")


def exact_key(record: Record) -> str:
    normal = " ".join(record.flat().lower().split())
    return hashlib.sha256(normal.encode()).hexdigest()


def shingles(text: str, n: int) -> set[bytes]:
    words = _WORDS.findall(text.lower())
    if len(words) < n:
        return {" ".join(words).encode()}
    return {" ".join(words[i : i + n]).encode() for i in range(len(words) - n + 1)}


class NearDuplicateFinder:
    """Keeps the first of each group of near-duplicates: a record is dropped when LSH finds an earlier one whose
    estimated Jaccard similarity reaches the threshold."""

    def __init__(self, config: NearDedupeConfig, seed: int = 1) -> None:
        from datasketch import MinHash, MinHashLSH

        self._config = config
        self._seed = seed
        self._minhash = MinHash
        self._lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm)
        self._kept: dict[str, object] = {}

    def keep_all(self, texts: Iterable[tuple[str, str]]) -> list[bool]:
        """``texts`` is (key, text) pairs; returns for each whether it is kept."""
        pairs = list(texts)
        sets = [shingles(text, self._config.shingle_words) for _, text in pairs]
        hashes = self._minhash.bulk(sets, num_perm=self._config.num_perm, seed=self._seed)
        kept: list[bool] = []
        for (key, _), mh in zip(pairs, hashes, strict=True):
            duplicate = any(mh.jaccard(self._kept[other]) >= self._config.threshold for other in self._lsh.query(mh))
            if not duplicate and key not in self._kept:
                self._lsh.insert(key, mh)
                self._kept[key] = mh
            kept.append(not duplicate)
        return kept
