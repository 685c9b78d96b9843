"""``GUARDSERVE_REDIS__URL_FILE``: the Redis URL read from a secret file (the Helm chart's external Redis)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from guardserve.app.settings import Settings
from guardserve.app.store.settings import RedisSettings


def test_the_url_comes_from_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "url"
    secret.write_text("redis://:s3cret@redis.example:6380/2\n", encoding="utf-8")
    monkeypatch.setenv("GUARDSERVE_REDIS__URL_FILE", str(secret))
    redis = Settings().redis
    assert redis.url is not None
    assert redis.url.get_secret_value() == "redis://:s3cret@redis.example:6380/2"
    assert "s3cret" not in repr(redis)  # still a secret once read


def test_the_variable_wins_over_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "url"
    secret.write_text("redis://from-file:6379/0", encoding="utf-8")
    redis = RedisSettings(url="redis://from-env:6379/0", url_file=secret)
    assert redis.url is not None and redis.url.get_secret_value() == "redis://from-env:6379/0"


def test_an_empty_file_means_no_redis(tmp_path: Path) -> None:
    secret = tmp_path / "url"
    secret.write_text("\n", encoding="utf-8")
    assert RedisSettings(url_file=secret).url is None


def test_a_missing_file_stops_start_up_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ValidationError, match=r"cannot read the Redis URL from .*nope"):
        RedisSettings(url_file=missing)
