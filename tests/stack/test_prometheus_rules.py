"""promtool checks of the Prometheus configuration, rules and their unit tests; alert metadata."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.stack.conftest import GRAFANA, ROOT, load_yaml, require_binary

PROMETHEUS_DIR = GRAFANA / "prometheus"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*_test.yml"))
SEVERITIES = {"page", "ticket"}
RUNBOOK_SECTIONS = ("What it means", "First three checks", "Dashboards", "Mitigations")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool", "prometheus")
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=300, cwd=PROMETHEUS_DIR
    )


def alerts() -> list[dict[str, Any]]:
    groups = load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_uids() -> set[str]:
    return {json.loads(path.read_text())["uid"] for path in (GRAFANA / "dashboards").glob("*.json")}


def test_config_is_valid() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("rules", ["recording_rules.yml", "alerts.yml"])
def test_rules_are_valid(rules: str) -> None:
    result = promtool("check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("tests", RULE_TESTS, ids=lambda path: path.name)
def test_rule_unit_tests_pass(tests: Path) -> None:
    result = promtool("test", "rules", str(tests.relative_to(PROMETHEUS_DIR)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_firing() -> None:
    """Each alert appears with a non-empty ``exp_alerts`` in some promtool test."""
    tested = set()
    for path in RULE_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                if check["exp_alerts"]:
                    tested.add(check["alertname"])
    assert {rule["alert"] for rule in alerts()} <= tested


def test_prometheus_sends_alerts_to_alertmanager() -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
class TestAlertMetadata:
    def test_has_a_routable_severity(self, rule: dict[str, Any]) -> None:
        assert rule["labels"]["severity"] in SEVERITIES

    def test_links_an_existing_dashboard(self, rule: dict[str, Any]) -> None:
        match = re.fullmatch(r"/d/([\w-]+)(\?.*)?", rule["annotations"]["dashboard_url"])
        assert match, rule["annotations"]["dashboard_url"]
        assert match.group(1) in dashboard_uids()

    def test_states_its_current_value(self, rule: dict[str, Any]) -> None:
        text = rule["annotations"]["summary"] + rule["annotations"]["description"]
        assert "$value" in text

    def test_links_a_runbook_in_the_repository(self, rule: dict[str, Any]) -> None:
        runbook = ROOT / rule["annotations"]["runbook_url"]
        assert runbook.parent == ROOT / "docs" / "runbooks"
        assert runbook.is_file(), runbook
        text = runbook.read_text()
        assert rule["alert"] in text
        for section in RUNBOOK_SECTIONS:
            assert f"\n## {section}\n" in text, f"{runbook.name} lacks '{section}'"
