"""promtool checks of the Prometheus configuration, rules and their unit tests."""

from __future__ import annotations

import subprocess

import pytest

from tests.stack.conftest import GRAFANA, require_binary

PROMETHEUS_DIR = GRAFANA / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("promtool", "prometheus")
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=120, cwd=PROMETHEUS_DIR
    )


def test_config_is_valid() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("rules", ["recording_rules.yml", "alerts.yml"])
def test_rules_are_valid(rules: str) -> None:
    result = promtool("check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass() -> None:
    result = promtool("test", "rules", "tests/alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
