"""The loop's hardware choices: ``mixed_precision: auto`` picks bf16 only where the hardware computes in bf16."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from guardserve.training.loop import resolve_precision


def _cpu(monkeypatch: pytest.MonkeyPatch, **caps: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True, **caps})


def test_explicit_settings_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch)
    assert resolve_precision("bf16") == "bf16"
    assert resolve_precision("no") == "no"


@pytest.mark.parametrize(
    ("caps", "expected"),
    [({}, "no"), ({"avx512_bf16": True}, "bf16"), ({"amx_bf16": True}, "bf16"), ({"avx512_f": True}, "no")],
)
def test_auto_on_cpu_follows_native_bf16(monkeypatch: pytest.MonkeyPatch, caps: dict[str, Any], expected: str) -> None:
    _cpu(monkeypatch, **caps)
    assert resolve_precision("auto") == expected


@pytest.mark.parametrize("bf16", [True, False])
def test_auto_on_gpu_asks_the_device(monkeypatch: pytest.MonkeyPatch, bf16: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    assert resolve_precision("auto") == ("bf16" if bf16 else "no")
