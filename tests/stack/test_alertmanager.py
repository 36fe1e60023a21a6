"""Alertmanager: amtool validates the config and its templates, routes every alert by severity."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.stack.conftest import GRAFANA, load_yaml, require_binary

ALERTMANAGER_DIR = GRAFANA / "alertmanager"
CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("amtool", "prometheus-alertmanager")
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=60, cwd=ALERTMANAGER_DIR
    )


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(GRAFANA / "prometheus" / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"]]


def route(labels: dict[str, str]) -> str:
    pairs = [f"{name}={value}" for name, value in labels.items()]
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *pairs)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_amtool_accepts_the_config_and_its_templates() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


@pytest.mark.parametrize(
    ("severity", "receiver"),
    [("page", "shop-page"), ("ticket", "shop-ticket"), ("", "shop-ticket")],
)
def test_severity_picks_the_receiver(severity: str, receiver: str) -> None:
    labels = {"alertname": "Anything", "job": "shop"}
    if severity:
        labels["severity"] = severity
    assert route(labels) == receiver


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_reaches_the_receiver_of_its_severity(rule: dict[str, Any]) -> None:
    labels = {"alertname": rule["alert"], "job": "shop", **rule["labels"]}
    assert route(labels) == f"shop-{rule['labels']['severity']}"


def test_the_notification_links_the_runbook_and_the_dashboard(tmp_path: Path) -> None:
    """Render the templates the way a Slack or PagerDuty notification uses them."""
    annotations = {
        "summary": "The shop at app:8080 reports not ready (shop_ready = 0)",
        "description": "The readiness check of app:8080 has failed for 2 minutes.",
        "runbook_url": "docs/runbooks/not-ready.md",
        "dashboard_url": "/d/shop-runtime?var-job=shop&var-instance=app:8080",
    }
    labels = {"alertname": "ShopNotReady", "job": "shop", "instance": "app:8080"}
    data = {
        "receiver": "shop-page",
        "status": "firing",
        "alerts": [{"status": "firing", "labels": labels, "annotations": annotations}],
        "groupLabels": {"alertname": "ShopNotReady"},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "http://alertmanager:9093",
    }
    (tmp_path / "data.json").write_text(json.dumps(data))
    result = amtool(
        "template",
        "render",
        "--template.glob=templates/*.tmpl",
        f"--template.data={tmp_path / 'data.json'}",
        '--template.text={{ template "shop.title" . }}\n{{ template "shop.text" . }}',
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[FIRING:1] ShopNotReady on app:8080"
    assert annotations["summary"] in lines
    assert any(
        line.startswith("Runbook: https://") and line.endswith("/docs/runbooks/not-ready.md")
        for line in lines
    )
    assert "Dashboard: http://localhost:3000/d/shop-runtime?var-job=shop&var-instance=app:8080" in (
        lines
    )


class TestSecretsStayOutOfTheRepository:
    def test_integrations_read_their_keys_from_files(self) -> None:
        for receiver in load_yaml(CONFIG)["receivers"]:
            for slack in receiver.get("slack_configs", []):
                assert "api_url" not in slack
                assert slack["api_url_file"].startswith("/etc/alertmanager/secrets/")
            for pagerduty in receiver.get("pagerduty_configs", []):
                assert not {"routing_key", "service_key"} & set(pagerduty)
                assert pagerduty["routing_key_file"].startswith("/etc/alertmanager/secrets/")

    def test_git_ignores_the_secrets_directory_but_its_readme(self) -> None:
        lines = (ALERTMANAGER_DIR / "secrets" / ".gitignore").read_text().splitlines()
        patterns = [line for line in lines if line and not line.startswith("#")]
        assert patterns == ["*", "!.gitignore", "!README.md"]


class TestCompose:
    def test_alertmanager_is_pinned_and_mounts_the_repos_config(
        self, compose: dict[str, Any]
    ) -> None:
        service = compose["services"]["alertmanager"]
        assert service["image"].startswith("prom/alertmanager:v0.")
        assert "./grafana/alertmanager:/etc/alertmanager:ro" in service["volumes"]
        assert "--config.file=/etc/alertmanager/alertmanager.yml" in service["command"]

    def test_prometheus_keeps_the_error_budget_window_and_accepts_k6_results(
        self, compose: dict[str, Any]
    ) -> None:
        command = compose["services"]["prometheus"]["command"]
        assert "--storage.tsdb.retention.time=35d" in command
        assert "--web.enable-remote-write-receiver" in command
        assert "alertmanager" in compose["services"]["prometheus"]["depends_on"]
