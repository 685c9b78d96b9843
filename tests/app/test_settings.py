from __future__ import annotations

import json

import pytest

from guardserve.app.settings import Settings
from guardserve.models.cpu.config import CPUEngineConfig
from guardserve.models.openai_http import HTTPEngineConfig


def test_environment_with_prefix_and_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDSERVE_PORT", "9001")
    monkeypatch.setenv("GUARDSERVE_CPU__MAX_BATCH", "32")
    monkeypatch.setenv("GUARDSERVE_HTTP__READ_TIMEOUT", "12.5")
    monkeypatch.setenv(
        "GUARDSERVE_MODELS", json.dumps([{"name": "m", "engine": "openai", "url": "http://u/v1", "context_length": 64}])
    )
    settings = Settings()
    assert settings.port == 9001
    assert settings.cpu.max_batch == 32 and isinstance(settings.cpu, CPUEngineConfig)  # the engine's own model
    assert settings.http.read_timeout == 12.5 and isinstance(settings.http, HTTPEngineConfig)
    assert settings.models[0].name == "m"


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARDSERVE_CPU__MAX_BATCH", "0")
    with pytest.raises(ValueError, match="max_batch"):
        Settings()
