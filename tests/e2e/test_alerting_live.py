"""Alerts reach a person: real Prometheus → real Alertmanager → the receiver of their severity.

Debian's Prometheus scrapes the real server and a dead loopback port with the repository's rule
files; Debian's Alertmanager routes with the repository's routing tree, inhibitions and
templates. Two things are changed for the test, each said where it is done: the rules' ``for``
durations are dropped (minutes of waiting otherwise) and every receiver's Slack/PagerDuty
integrations, which cannot run here, are replaced by a webhook to a sink on loopback that
records which receiver each notification came through.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.monitoring import WebhookSink, alertmanager, prometheus, query
from tests.helpers import GRAFANA, Server, eventually, free_port, load_yaml

pytestmark = pytest.mark.e2e

# The links every page carries are built from these external labels (prometheus.yml takes them
# from GRAFANA_URL and RUNBOOK_URL).
GRAFANA_URL = "https://grafana.example.test"
RUNBOOK_URL = "https://git.example.test/shop/blob/main/docs/runbooks"

# A rule of ours with severity ticket, firing at once: no repository rule with that severity
# can be made to fire against a healthy server within a test.
TICKET_RULE = {
    "groups": [
        {
            "name": "alerting-path",
            "rules": [
                {
                    "alert": "AlertingPathTicket",
                    "expr": "vector(1)",
                    "labels": {"severity": "ticket", "job": "shop"},
                    "annotations": {"summary": "value {{ $value }}"},
                }
            ],
        }
    ]
}


def alertmanager_config(sink: WebhookSink) -> dict[str, Any]:
    """The repository's config, with webhooks for integrations and one-second timings."""
    config: dict[str, Any] = load_yaml(GRAFANA / "alertmanager" / "alertmanager.yml")
    config["templates"] = [str(GRAFANA / "alertmanager" / t) for t in config["templates"]]
    config["receivers"] = [
        {"name": receiver["name"], "webhook_configs": [{"url": f"{sink.url}/{receiver['name']}"}]}
        for receiver in config["receivers"]
    ]
    for route in [config["route"], *config["route"]["routes"]]:
        route.update(group_wait="1s", group_interval="1s", repeat_interval="1m")
    return config


def rules_without_for(workdir: Path) -> Path:
    """The repository's alerts, each firing as soon as its expression holds."""
    rules = load_yaml(GRAFANA / "prometheus" / "alerts.yml")
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("for", None)
    path = workdir / "alerts.yml"
    path.write_text(yaml_dump(rules))
    return path


def yaml_dump(data: Any) -> str:
    return json.dumps(data)  # JSON is YAML


@pytest.fixture(scope="module")
def stack(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("alerting")
    dead = f"127.0.0.1:{free_port()}"  # nothing listens here: up == 0
    (workdir / "ticket.yml").write_text(yaml_dump(TICKET_RULE))
    with WebhookSink() as sink:
        (workdir / "am").mkdir()
        with alertmanager(alertmanager_config(sink), workdir / "am") as am_url:
            config = {
                "global": {
                    "scrape_interval": "1s",
                    "evaluation_interval": "1s",
                    "external_labels": {"grafana_url": GRAFANA_URL, "runbook_url": RUNBOOK_URL},
                },
                "rule_files": [
                    str(GRAFANA / "prometheus" / "recording_rules.yml"),
                    str(rules_without_for(workdir)),
                    str(workdir / "ticket.yml"),
                ],
                "alerting": {
                    "alertmanagers": [
                        {"static_configs": [{"targets": [am_url.removeprefix("http://")]}]}
                    ]
                },
                "scrape_configs": [
                    {
                        "job_name": "shop",
                        "static_configs": [{"targets": [server.url.removeprefix("http://"), dead]}],
                    }
                ],
            }
            (workdir / "prom").mkdir()
            # An alert that fires before Prometheus has found Alertmanager is sent again only
            # after the resend delay (1 min by default).
            resend = "--rules.alert.resend-delay=1s"
            with prometheus(config, workdir / "prom", resend) as prom_url:
                yield {"alertmanager": am_url, "prometheus": prom_url, "sink": sink, "dead": dead}


def alerts_at_alertmanager(url: str, alertname: str) -> list[dict[str, Any]]:
    reply = requests.get(
        f"{url}/api/v2/alerts", params={"filter": f'alertname="{alertname}"'}, timeout=10
    )
    reply.raise_for_status()
    alerts: list[dict[str, Any]] = reply.json()
    return alerts


def notifications(sink: WebhookSink, receiver: str, alertname: str) -> list[dict[str, Any]]:
    return [
        alert
        for path, body in list(sink.received)
        if path == f"/{receiver}" and body["receiver"] == receiver
        for alert in body["alerts"]
        if alert["labels"]["alertname"] == alertname
    ]


class TestAPageReachesThePageReceiver:
    def test_prometheus_fires_target_down_for_the_dead_instance_only(
        self, stack: dict[str, Any]
    ) -> None:
        firing = eventually(
            lambda: query(stack["prometheus"], 'ALERTS{alertname="ShopTargetDown"}')["data"][
                "result"
            ],
            what="ShopTargetDown in Prometheus",
            timeout=30,
            interval=0.5,
        )
        assert [alert["metric"]["instance"] for alert in firing] == [stack["dead"]]

    def test_the_alert_arrives_at_alertmanager_routed_to_shop_page(
        self, stack: dict[str, Any]
    ) -> None:
        (alert,) = eventually(
            lambda: alerts_at_alertmanager(stack["alertmanager"], "ShopTargetDown"),
            what="ShopTargetDown at Alertmanager",
            timeout=30,
            interval=0.5,
        )
        assert alert["labels"]["instance"] == stack["dead"]
        assert alert["labels"]["severity"] == "page"
        assert [receiver["name"] for receiver in alert["receivers"]] == ["shop-page"]
        assert alert["status"]["state"] == "active"

    def test_the_receiver_gets_the_runbook_dashboard_and_value(self, stack: dict[str, Any]) -> None:
        (alert,) = eventually(
            lambda: notifications(stack["sink"], "shop-page", "ShopTargetDown"),
            what="a shop-page notification",
            timeout=30,
            interval=0.5,
        )[:1]
        annotations = alert["annotations"]
        assert annotations["runbook_url"] == f"{RUNBOOK_URL}/target-down.md"
        runbook = annotations["runbook_url"].removeprefix(RUNBOOK_URL + "/")
        assert (GRAFANA.parent / "docs" / "runbooks" / runbook).is_file()
        assert annotations["dashboard_url"] == (
            f"{GRAFANA_URL}/d/shop-runtime?var-job=shop&var-instance={stack['dead']}"
        )
        assert annotations["summary"].endswith("(up = 0)")


class TestATicketReachesTheTicketReceiver:
    def test_the_ticket_is_routed_to_shop_ticket_and_never_to_shop_page(
        self, stack: dict[str, Any]
    ) -> None:
        (alert,) = eventually(
            lambda: alerts_at_alertmanager(stack["alertmanager"], "AlertingPathTicket"),
            what="AlertingPathTicket at Alertmanager",
            timeout=30,
            interval=0.5,
        )
        assert [receiver["name"] for receiver in alert["receivers"]] == ["shop-ticket"]
        eventually(
            lambda: notifications(stack["sink"], "shop-ticket", "AlertingPathTicket"),
            what="a shop-ticket notification",
            timeout=30,
            interval=0.5,
        )
        assert notifications(stack["sink"], "shop-page", "AlertingPathTicket") == []
