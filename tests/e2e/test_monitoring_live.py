"""A real Prometheus scrapes the real server; every dashboard and rule query must work."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.monitoring import prometheus, query
from tests.factories import random_username
from tests.helpers import GRAFANA, Server, eventually, load_yaml

pytestmark = pytest.mark.e2e

# Series our traffic cannot produce without breaking the database on purpose, alerts (none
# fire on a healthy service), worker restarts, or a k6 run (load-test.json).
MAY_BE_EMPTY = re.compile(
    r"shop_db_retries_total|shop_db_connection_errors_total|status_code=~\"5|ALERTS"
    r"|shop_unavailable_responses_total|shop_login_throttled_total"
    r"|shop_idempotent_replays_total|changes\(shop_worker_starts_total|\bk6_"
)
# Values the dashboards' variables take in the live check: job "shop", every instance/route.
VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "5m",
    "$job": "shop",
    "$instance": ".*",
    "$route": ".*",
}
LABEL_VALUES = re.compile(r"label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from panels(item.get("panels", []))


def dashboard_queries() -> list[tuple[str, str, str]]:
    """Return (dashboard, panel or annotation title, expr) for every query of every dashboard."""
    found = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        if path.name == "load-test.json":
            continue  # k6 series: checked against a real k6 run in tests/e2e/test_load_kit.py
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard["panels"]):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((path.name, panel["title"], target["expr"]))
        for annotation in dashboard.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                found.append((path.name, f"annotation {annotation['name']}", annotation["expr"]))
    return found


def variable_queries() -> list[tuple[str, str, str]]:
    """Return (dashboard, variable, label_values query) for the shop dashboards' variables."""
    found = []
    for path in sorted((GRAFANA / "dashboards").glob("shop-*.json")):
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable["type"] == "query":
                found.append((path.name, variable["name"], variable["definition"]))
    return found


# Every rule file the bundled Prometheus loads; only the shop's own series exist here (no
# exporters, probes or Prometheus self-scrape), so only recording_rules.yml must have data.
RULE_FILES: list[str] = load_yaml(GRAFANA / "prometheus" / "prometheus.yml")["rule_files"]


def rule_queries() -> list[tuple[str, str, str]]:
    found = []
    for name in RULE_FILES:
        for group in load_yaml(GRAFANA / "prometheus" / name)["groups"]:
            for rule in group["rules"]:
                found.append((name, rule.get("record") or rule["alert"], rule["expr"]))
    return found


def substitute(expr: str) -> str:
    """Put the values above in; any other variable inside a label matcher matches anything."""
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return re.sub(r'"[^"]*"', lambda m: re.sub(r"\$\{?\w+(?::\w+)?\}?", ".*", m.group(0)), expr)


@pytest.fixture(scope="module")
def live_prometheus(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start Prometheus scraping the test server every second, with the repo's rules.

    One change to them: the slow groups' own ``interval`` (1m) is dropped, so every group is
    evaluated every second like the rest; a test does not wait a minute for its first sample.
    """
    workdir = tmp_path_factory.mktemp("prometheus")
    rule_files = []
    for name in RULE_FILES:
        rules = load_yaml(GRAFANA / "prometheus" / name)
        for group in rules["groups"]:
            group.pop("interval", None)
        (workdir / name).write_text(json.dumps(rules))  # JSON is YAML
        rule_files.append(str(workdir / name))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": rule_files,
        "scrape_configs": [
            {
                "job_name": "shop",
                "static_configs": [{"targets": [server.url.removeprefix("http://")]}],
            }
        ],
    }
    with prometheus(config, workdir) as url:
        yield url


def drive_traffic(server: Server) -> None:
    """Touch every route, outcome and business counter at least once."""
    session = requests.Session()
    names = [random_username() for _ in range(3)]
    tokens = []
    for name in names:
        reply = session.post(f"{server.url}/api/auth", json={"username": name, "password": "pw"})
        tokens.append({"Authorization": f"Bearer {reply.json()['token']}"})
    session.post(f"{server.url}/api/auth", json={"username": names[0], "password": "bad"})
    for _ in range(20):
        session.get(f"{server.url}/api/info", headers=tokens[0])
        session.get(f"{server.url}/api/buy/pen", headers=tokens[1])
        session.post(
            f"{server.url}/api/sendCoin", json={"toUser": names[2], "amount": 1}, headers=tokens[0]
        )
    session.get(f"{server.url}/api/buy/car", headers=tokens[0])
    session.get(f"{server.url}/api/info")
    session.get(f"{server.url}/no/such/page")


@pytest.fixture(scope="module")
def scraped(server: Server, live_prometheus: str) -> str:
    """Traffic, then enough scrapes for 1m rates and the recording rules to see it."""
    eventually(
        lambda: query(live_prometheus, 'up{job="shop"} == 1')["data"]["result"],
        timeout=30,
        interval=0.5,
        what="Prometheus to scrape the shop",
    )
    drive_traffic(server)
    time.sleep(3)
    drive_traffic(server)
    eventually(
        lambda: query(live_prometheus, "shop:http_requests:rate5m > 0")["data"]["result"],
        timeout=30,
        interval=0.5,
        what="a request rate from the recording rule",
    )
    return live_prometheus


@pytest.mark.parametrize(("source", "name", "expr"), dashboard_queries() + rule_queries())
def test_query_evaluates_and_has_data_when_it_should(
    scraped: str, source: str, name: str, expr: str
) -> None:
    promql = substitute(expr)
    body = query(scraped, promql)
    assert body["status"] == "success", f"{source} / {name}: {body.get('error')}"
    expect_data = source.endswith(".json") or source == "recording_rules.yml"
    if expect_data and not MAY_BE_EMPTY.search(expr):
        assert body["data"]["result"], f"{source} / {name} returned no data: {promql}"


@pytest.mark.parametrize(("source", "name", "definition"), variable_queries())
def test_variable_lists_values(scraped: str, source: str, name: str, definition: str) -> None:
    match = LABEL_VALUES.match(substitute(definition))
    assert match, f"{source} / {name}: not label_values(selector, label): {definition}"
    body = query(scraped, match["selector"])
    assert body["status"] == "success", f"{source} / {name}: {body.get('error')}"
    values = {series["metric"].get(match["label"]) for series in body["data"]["result"]}
    assert values - {None}, f"{source} / {name} lists no values"


def test_there_are_queries_to_check() -> None:
    assert len(dashboard_queries()) >= 60
    assert len(rule_queries()) >= 40
    assert {name for _, name, _ in variable_queries()} >= {"job", "instance", "route"}


def test_prometheus_sees_both_workers_as_one_target(scraped: str) -> None:
    result = query(scraped, 'sum(shop_workers{job="shop"})')["data"]["result"]
    assert float(result[0]["value"][1]) == 2
    assert query(scraped, 'shop_ready{job="shop"}')["data"]["result"][0]["value"][1] == "1"


@pytest.mark.parametrize(
    "metric",
    [
        "shop_db_pool_size",
        "shop_db_pool_checked_out",
        "shop_event_loop_lag_max_seconds",
        "shop_password_hash_queue_depth",
        "shop_password_hash_queue_capacity",
    ],
)
def test_saturation_gauges_have_one_series_per_worker(scraped: str, metric: str) -> None:
    series = query(scraped, f'{metric}{{job="shop"}}')["data"]["result"]
    assert len({s["metric"]["pid"] for s in series}) == 2, series


def test_configured_workers_match_the_live_ones(scraped: str) -> None:
    configured = query(scraped, 'max(shop_workers_configured{job="shop"})')["data"]["result"]
    assert float(configured[0]["value"][1]) == 2


def test_the_event_loop_probe_reports_a_lag(scraped: str) -> None:
    """Above zero (it is measured), well under a second (the loop is not stuck)."""
    result = query(scraped, 'max(shop_event_loop_lag_max_seconds{job="shop"})')["data"]["result"]
    assert 0 < float(result[0]["value"][1]) < 1


def test_only_the_heartbeat_fires_on_a_healthy_service(scraped: str) -> None:
    firing = query(scraped, 'ALERTS{alertstate="firing"}')["data"]["result"]
    assert [alert["metric"]["alertname"] for alert in firing] == ["Watchdog"]
