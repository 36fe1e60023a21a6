"""Alertmanager: amtool validates the config and its templates and routes every alert by
severity, the Watchdog to the dead man's switch; a real Alertmanager applies the inhibitions."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import GRAFANA, alert_rules, free_port, load_yaml, require_binary

ALERTMANAGER_DIR = GRAFANA / "alertmanager"
CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"
SECRETS = "/etc/alertmanager/secrets/"
PROMETHEUS_DIR = GRAFANA / "prometheus"
# Rendered the way Prometheus renders them with GRAFANA_URL and RUNBOOK_URL set.
GRAFANA_URL = "https://grafana.shop.test"
RUNBOOK_URL = "https://git.shop.test/shop/blob/main/docs/runbooks"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_binary("amtool", "prometheus-alertmanager")
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=60, cwd=ALERTMANAGER_DIR
    )


def version(binary: str) -> tuple[int, ...]:
    output = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    found = re.search(r"version (\d+)\.(\d+)", output.stdout + output.stderr)
    assert found, output
    return tuple(int(part) for part in found.groups())


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped config, as the installed Alertmanager tools can read it.

    The dead man's switch reads its URL from a file (``url_file``, Alertmanager 0.26 and
    later; compose runs 0.28.1). Debian's amtool and alertmanager are 0.25: for them alone the
    file becomes a literal URL in a copy, and everything else is checked as shipped.
    """
    binary = require_binary("amtool", "prometheus-alertmanager")
    if version(binary) >= (0, 26):
        return CONFIG
    copy = tmp_path_factory.mktemp("alertmanager")
    text = re.sub(
        r"url_file: /etc/alertmanager/secrets/\S+",
        "url: http://127.0.0.1:9/heartbeat",
        CONFIG.read_text(),
    )
    (copy / "alertmanager.yml").write_text(text)
    (copy / "templates").symlink_to(ALERTMANAGER_DIR / "templates")
    return copy / "alertmanager.yml"


def route(config: Path, labels: dict[str, str]) -> str:
    pairs = [f"{name}={value}" for name, value in labels.items()]
    result = amtool("config", "routes", "test", f"--config.file={config}", *pairs)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_amtool_accepts_the_config_and_its_templates(config: Path) -> None:
    result = amtool("check-config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


@pytest.mark.parametrize(
    ("severity", "receiver"),
    [("page", "shop-page"), ("ticket", "shop-ticket"), ("", "shop-ticket")],
)
def test_severity_picks_the_receiver(config: Path, severity: str, receiver: str) -> None:
    labels = {"alertname": "Anything", "job": "shop"}
    if severity:
        labels["severity"] = severity
    assert route(config, labels) == receiver


@pytest.mark.parametrize("rule", alert_rules(PROMETHEUS_DIR), ids=lambda rule: rule["alert"])
def test_every_alert_reaches_the_receiver_of_its_severity(
    config: Path, rule: dict[str, Any]
) -> None:
    labels = {"alertname": rule["alert"], "job": "shop", **rule["labels"]}
    expected = (
        "dead-mans-switch" if rule["alert"] == "Watchdog" else f"shop-{rule['labels']['severity']}"
    )
    assert route(config, labels) == expected


class TestDeadMansSwitch:
    def route(self) -> dict[str, Any]:
        routes = load_yaml(CONFIG)["route"]["routes"]
        found: dict[str, Any] = routes[0]
        return found

    def test_the_watchdog_reaches_only_the_switch_whatever_its_labels(self, config: Path) -> None:
        labels = {"alertname": "Watchdog", "severity": "page", "job": "shop"}
        assert route(config, labels) == "dead-mans-switch"

    def test_its_route_comes_first_and_does_not_continue(self) -> None:
        assert self.route()["matchers"] == ['alertname="Watchdog"']
        assert not self.route().get("continue", False)

    def test_it_is_grouped_alone_and_repeated_every_few_minutes(self) -> None:
        assert self.route()["group_by"] == ["alertname"]
        for interval in ("group_interval", "repeat_interval"):
            assert re.fullmatch(r"[1-5]m", self.route()[interval]), self.route()[interval]

    def test_its_webhook_url_is_a_secret_file(self) -> None:
        receivers = {receiver["name"]: receiver for receiver in load_yaml(CONFIG)["receivers"]}
        (webhook,) = receivers["dead-mans-switch"]["webhook_configs"]
        assert "url" not in webhook
        assert webhook["url_file"].startswith(SECRETS)


def test_the_notification_carries_the_alerts_absolute_links(tmp_path: Path) -> None:
    """Render the templates the way a Slack or PagerDuty notification uses them."""
    annotations = {
        "summary": "The shop at app:8080 reports not ready (shop_ready = 0)",
        "description": "The readiness check of app:8080 has failed for 2 minutes.",
        "runbook_url": f"{RUNBOOK_URL}/not-ready.md",
        "dashboard_url": f"{GRAFANA_URL}/d/shop-runtime?var-job=shop&var-instance=app:8080",
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
        '--template.text={{ template "shop.title" . }}\n{{ template "shop.text" . }}\n'
        '{{ template "shop.runbook" . }}\n{{ template "shop.dashboard" . }}',
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[FIRING:1] ShopNotReady on app:8080"
    assert annotations["summary"] in lines
    assert f"Runbook: {RUNBOOK_URL}/not-ready.md" in lines
    assert f"Dashboard: {annotations['dashboard_url']}" in lines
    assert lines[-2:] == [annotations["runbook_url"], annotations["dashboard_url"]]


def alert(name: str, **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": name},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }


def call(url: str, payload: Any = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 (local server)
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        text = response.read()
    return json.loads(text) if text else None


@pytest.fixture(scope="module")
def running_alertmanager(config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run Alertmanager on the shipped routes and inhibitions, on a free local port."""
    binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    workdir = tmp_path_factory.mktemp("alertmanager-run")
    port = free_port()
    command = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    log = (workdir / "alertmanager.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    base = f"http://127.0.0.1:{port}/api/v2"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                call(f"{base}/status")
                break
            except OSError:
                assert process.poll() is None, (workdir / "alertmanager.log").read_text()
                assert time.monotonic() < deadline, "Alertmanager did not start in 30 s"
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


FIRING = [
    alert("Watchdog", severity="heartbeat"),
    alert("ShopTargetDown", severity="page", job="shop", instance="app:8080"),
    alert("ShopNotReady", severity="page", job="shop", instance="app:8080"),
    alert("ShopNotReady", severity="page", job="shop", instance="app2:8080"),
    alert("ExporterDown", severity="ticket", job="postgres", instance="pg-exp:9187"),
    alert("PostgresLongTransaction", severity="ticket", job="postgres", instance="pg-exp:9187"),
    alert(
        "ShopSuccessBudgetBurnFast",
        severity="page",
        job="shop",
        slo="success",
        http_route="/api/info",
    ),
    alert(
        "ShopSuccessBudgetBurnSlow",
        severity="ticket",
        job="shop",
        slo="success",
        http_route="/api/info",
    ),
    alert(
        "ShopSuccessBudgetBurnSlow",
        severity="ticket",
        job="shop",
        slo="success",
        http_route="/api/auth",
    ),
    alert(
        "HostDiskWillFillIn4h",
        severity="page",
        job="node",
        instance="node:9100",
        mountpoint="/",
    ),
    alert(
        "HostDiskWillFillIn24h",
        severity="ticket",
        job="node",
        instance="node:9100",
        mountpoint="/",
    ),
]


@pytest.fixture(scope="module")
def muted(running_alertmanager: str) -> dict[tuple[str, str], bool]:
    call(f"{running_alertmanager}/alerts", FIRING)
    deadline = time.monotonic() + 20
    while True:
        found = call(f"{running_alertmanager}/alerts")
        state = {
            (
                a["labels"]["alertname"],
                a["labels"].get("instance") or a["labels"].get("http_route", ""),
            ): bool(a["status"]["inhibitedBy"])
            for a in found
        }
        if len(state) == len(FIRING) and sum(state.values()) >= 4:  # the four muted below
            return state
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


class TestInhibitions:
    """What a real Alertmanager mutes while other alerts fire (its API reports inhibitedBy)."""

    @pytest.mark.parametrize(
        "key",
        [
            ("ShopNotReady", "app:8080"),
            ("PostgresLongTransaction", "pg-exp:9187"),
            ("ShopSuccessBudgetBurnSlow", "/api/info"),
            ("HostDiskWillFillIn24h", "node:9100"),
        ],
    )
    def test_a_cause_already_paging_mutes(
        self, muted: dict[tuple[str, str], bool], key: tuple[str, str]
    ) -> None:
        assert muted[key]

    @pytest.mark.parametrize(
        "key",
        [
            ("Watchdog", ""),
            ("ShopTargetDown", "app:8080"),
            ("ShopNotReady", "app2:8080"),
            ("ExporterDown", "pg-exp:9187"),
            ("ShopSuccessBudgetBurnFast", "/api/info"),
            ("ShopSuccessBudgetBurnSlow", "/api/auth"),
            ("HostDiskWillFillIn4h", "node:9100"),
        ],
    )
    def test_nothing_else_is_muted(
        self, muted: dict[tuple[str, str], bool], key: tuple[str, str]
    ) -> None:
        assert not muted[key]

    def test_the_watchdog_is_a_group_of_its_own(
        self, muted: dict[tuple[str, str], bool], running_alertmanager: str
    ) -> None:
        groups = call(f"{running_alertmanager}/alerts/groups")
        (watchdog,) = [
            g for g in groups if any(a["labels"]["alertname"] == "Watchdog" for a in g["alerts"])
        ]
        assert watchdog["receiver"]["name"] == "dead-mans-switch"
        assert [a["labels"]["alertname"] for a in watchdog["alerts"]] == ["Watchdog"]


class TestSecretsStayOutOfTheRepository:
    def test_integrations_read_their_keys_from_files(self) -> None:
        for receiver in load_yaml(CONFIG)["receivers"]:
            for slack in receiver.get("slack_configs", []):
                assert "api_url" not in slack
                assert slack["api_url_file"].startswith(SECRETS)
            for pagerduty in receiver.get("pagerduty_configs", []):
                assert not {"routing_key", "service_key"} & set(pagerduty)
                assert pagerduty["routing_key_file"].startswith(SECRETS)
            for webhook in receiver.get("webhook_configs", []):
                assert "url" not in webhook
                assert webhook["url_file"].startswith(SECRETS)

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

    def test_alertmanager_reads_webhook_urls_from_files_without_crashing(
        self, compose: dict[str, Any]
    ) -> None:
        """``url_file`` came in 0.26; until 0.28 a webhook answering non-2xx with it crashed
        Alertmanager (prometheus/alertmanager#3798): the dead man's switch needs 0.28 or later."""
        image = compose["services"]["alertmanager"]["image"]
        found = re.fullmatch(r"prom/alertmanager:v(\d+)\.(\d+)\.\d+", image)
        assert found, image
        assert (int(found[1]), int(found[2])) >= (0, 28), image

    def test_prometheus_keeps_the_error_budget_window_and_accepts_k6_results(
        self, compose: dict[str, Any]
    ) -> None:
        command = compose["services"]["prometheus"]["command"]
        assert "--storage.tsdb.retention.time=35d" in command
        assert "--web.enable-remote-write-receiver" in (
            compose["services"]["prometheus"]["command"]
            + compose["services"].get("prometheus-loadtest", {}).get("command", [])
        )
        assert "alertmanager" in compose["services"]["prometheus"]["depends_on"]

    def test_prometheus_builds_the_alerts_links_from_the_environment(
        self, compose: dict[str, Any]
    ) -> None:
        """prometheus.yml's external labels are ${GRAFANA_URL} and ${RUNBOOK_URL}."""
        service = compose["services"]["prometheus"]
        assert "--enable-feature=expand-external-labels" in service["command"]
        assert any(flag.startswith("--web.external-url=") for flag in service["command"])
        assert {"GRAFANA_URL", "RUNBOOK_URL"} <= set(service["environment"])
