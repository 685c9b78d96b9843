from __future__ import annotations

from pathlib import Path

import pytest

from guardserve.guardrails.policy import DEFAULT_POLICY_FILE, PolicyError, load_policies


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policies.yaml"
    path.write_text(text)
    return path


def test_bundled_policies_load() -> None:
    policies = load_policies(DEFAULT_POLICY_FILE)
    assert policies.default == "default"
    assert {"default", "strict", "observe", "unguarded"} <= set(policies.policies)


def test_strictness_order() -> None:
    p = load_policies(DEFAULT_POLICY_FILE).policies
    assert p["strict"].at_least_as_strict_as(p["default"])
    assert not p["default"].at_least_as_strict_as(p["strict"])
    assert not p["observe"].at_least_as_strict_as(p["default"])
    assert not p["unguarded"].at_least_as_strict_as(p["default"])
    assert p["default"].at_least_as_strict_as(p["unguarded"])
    assert p["default"].at_least_as_strict_as(p["default"])


def test_dropping_the_injection_rules_is_not_stricter(tmp_path: Path) -> None:
    guard = "prompt_injection: {action: block, threshold: 0.5%s}"
    text = "default: rules\npolicies:\n  rules:\n    input:\n      %s\n  bare:\n    input:\n      %s\n"
    path = tmp_path / "p.yaml"
    path.write_text(text % (guard % "", guard % ", builtin_rules: false"))
    p = load_policies(path).policies
    assert p["rules"].at_least_as_strict_as(p["bare"]) and not p["bare"].at_least_as_strict_as(p["rules"])


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("default: a\npolicies:\n  a:\n    input:\n      pii: {action: explode}\n", 5, "input.pii.action"),
        ("default: a\npolicies:\n  a:\n    output:\n      toxicity:\n        threshold: 2\n", 6, "threshold"),
        ("default: a\npolicies:\n  a:\n    input:\n      toxicity: {action: mask}\n", 5, "block' or 'flag"),
        ("default: b\npolicies:\n  a: {}\n", 1, "default policy 'b' is not defined"),
        ("default: a\npolicies:\n  a:\n    colour: red\n", 4, "colour"),
        ("default: a\npolicies:\n  a:\n    output:\n      pii: {action: pseudonymize}\n", 4, "cannot pseudonymize"),
        (
            "default: a\npolicies:\n  a:\n    input:\n      pii:\n        custom:\n          - entity: EMP\n"
            "            patterns: [{regex: '(oops'}]\n",
            8,
            "invalid regular expression",
        ),
        ("default: a\npolicies:\n  a: [\n", 4, "not valid YAML"),
    ],
)
def test_bad_policy_file_names_file_line_and_reason(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as err:
        load_policies(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}:"), message
    assert reason in message


def test_the_default_policy_acts_at_the_thresholds_the_guard_trainer_chose_on_dev() -> None:
    """policies.yaml repeats the artifact's dev-chosen thresholds (rounded to 3 places): retraining the heads without
    updating the policy would silently move every operating point."""
    import json

    from guardserve.guardrails.semantic import DEFAULT_ARTIFACT

    chosen = json.loads((DEFAULT_ARTIFACT / "manifest.json").read_text())["thresholds"]
    spec = load_policies(DEFAULT_POLICY_FILE).policies["default"]
    used = {
        "toxicity": spec.input.toxicity,
        "harmful_request": spec.input.harmful_request,
        "prompt_injection": spec.input.prompt_injection,
    }
    for task, guard in used.items():
        assert guard is not None and guard.threshold == round(chosen[task], 3), task
    assert spec.output.toxicity is not None and spec.output.toxicity.threshold == round(chosen["toxicity"], 3)
