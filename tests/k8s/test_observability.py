"""Dashboards and alerts: promtool checks and unit-tests the rules, and both only use metrics the gateway exports.

promtool comes from Debian's `prometheus` package (.ci/run installs it). Outside CI these tests skip, saying why,
when it is missing; in CI (CI set) they fail instead.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from guardserve.app.observability.metrics import GatewayMetrics
from tests.support.requirements import require
from tests.support.waits import SUBPROCESS_S

FILES = Path(__file__).resolve().parents[2] / "k8s" / "observability"
RULES = FILES / "prometheus-rules.yaml"
RULE_TESTS = FILES / "prometheus-rules.test.yaml"
DASHBOARD = FILES / "grafana-dashboard.json"
METRIC = re.compile(r"\bguardserve_[a-z_]+\b")


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    require(found is not None, "promtool", "apt-get install -y --no-install-recommends prometheus")
    assert found is not None
    return found


def run(*args: str, cwd: Path = FILES) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=SUBPROCESS_S)


def exported() -> set[str]:
    """Every sample name the gateway can export under guardserve_."""
    names = set()
    for family in GatewayMetrics().registry.collect():
        if not family.name.startswith("guardserve_"):
            continue
        if family.type == "histogram":
            names |= {f"{family.name}_bucket", f"{family.name}_sum", f"{family.name}_count"}
        elif family.type == "counter":
            names.add(f"{family.name}_total")
        else:
            names.add(family.name)
    return names


def families(names: set[str]) -> set[str]:
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


# --- alert rules ---------------------------------------------------------------------------------------------------


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_rules_pass_promtool_check(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_rule_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


MUTATIONS = [
    ("GuardServeHigh5xxRatio", 'status=~"5.."}[5m]', 'status=~"4.."}[5m]'),
    ("GuardServeTimeToFirstTokenAboveSLO", ") > 2\n", ") > 10\n"),
    ("GuardServeRateLimiterDegraded", "guardserve_ratelimit_backend_degraded > 0", "absent(up)"),
    ("GuardServeEngineDown", "guardserve_engine_up == 0", "guardserve_engine_up < 0"),
    ("GuardServeGuardErrors", 'action="error"', 'action="block"'),
]


@pytest.mark.parametrize(("alert", "old", "new"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_rule_unit_tests_catch_a_broken_rule(promtool: str, tmp_path: Path, alert: str, old: str, new: str) -> None:
    text = RULES.read_text()
    assert text.count(old) == 1
    (tmp_path / RULES.name).write_text(text.replace(old, new))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = run(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0 and f"alertname: {alert}" in result.stdout + result.stderr


def test_the_issue_alerts_exist_with_severity_and_summary() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(rules) == {
        "GuardServeHigh5xxRatio",
        "GuardServeTimeToFirstTokenAboveSLO",
        "GuardServeRateLimiterDegraded",
        "GuardServeEngineDown",
        "GuardServeGuardErrors",
    }
    for rule in rules.values():
        assert rule["labels"]["severity"] in ("page", "ticket")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == set(rules)


def test_rules_use_only_exported_metrics() -> None:
    used = {name for rule in alert_rules() for name in METRIC.findall(rule["expr"])}
    assert used and used <= exported()


# --- dashboard -----------------------------------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def expressions() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] == "guardserve-overview" and board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "job", "model"}
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0


def test_dashboard_shows_every_exported_metric() -> None:
    used = {name for expr in expressions() for name in METRIC.findall(expr)}
    assert used <= exported()
    assert families(used) == families(exported())  # rate, errors, TTFT/TPOT, guards, limiter, tokens, engines...


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """Each panel query, with Grafana's variables filled in, as a recording rule that promtool must accept."""
    rules = []
    for i, expr in enumerate(expressions()):
        concrete = expr.replace("$__rate_interval", "5m").replace("$job", ".*").replace("$model", ".*")
        assert "$" not in concrete, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": concrete})
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run(promtool, "check", "rules", "queries.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_percentile_panels_aggregate_buckets_by_le() -> None:
    for expr in expressions():
        if "histogram_quantile" in expr:
            assert re.search(r"sum by \([^)]*\ble\)", expr) and "_bucket{" in expr, expr
