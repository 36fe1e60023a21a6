"""A real Prometheus scrapes the real server; every dashboard and rule query must work."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import Server, free_port, wait_until_up
from tests.factories import random_username
from tests.stack.conftest import GRAFANA, load_yaml, require_binary

pytestmark = pytest.mark.e2e

# Series our traffic cannot produce without breaking the database on purpose.
MAY_BE_EMPTY = re.compile(
    r"shop_db_retries_total|shop_db_connection_errors_total|status_code=~\"5|ALERTS"
)


def dashboard_queries() -> list[tuple[str, str, str]]:
    """Return (dashboard, panel title, expr) for every target of every panel."""
    found = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        if path.name == "load-test.json":
            continue  # k6 series: checked against a real k6 run in tests/e2e/test_load_kit.py
        dashboard = json.loads(path.read_text())
        for panel in panels(dashboard["panels"]):
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((path.name, panel["title"], target["expr"]))
    return found


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from panels(item.get("panels", []))


def rule_queries() -> list[tuple[str, str, str]]:
    found = []
    for name in ("recording_rules.yml", "alerts.yml"):
        for group in load_yaml(GRAFANA / "prometheus" / name)["groups"]:
            for rule in group["rules"]:
                found.append((name, rule.get("record") or rule["alert"], rule["expr"]))
    return found


@pytest.fixture(scope="module")
def prometheus(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start Prometheus scraping the test server every second, with the repo's rules."""
    binary = require_binary("prometheus", "prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    target = server.url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [
            str(GRAFANA / "prometheus" / f) for f in ("recording_rules.yml", "alerts.yml")
        ],
        "scrape_configs": [{"job_name": "shop", "static_configs": [{"targets": [target]}]}],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config))
    address = f"127.0.0.1:{free_port()}"
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={address}",
        ],
        stdout=log,
        stderr=log,
    )
    url = f"http://{address}"
    try:
        wait_until_up(url, process, path="/-/ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


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


def query(prometheus: str, expr: str) -> dict[str, Any]:
    reply = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body: dict[str, Any] = reply.json()
    return body


@pytest.fixture(scope="module")
def scraped(server: Server, prometheus: str) -> str:
    """Traffic, then enough scrapes for 1m rates and the recording rules to see it."""
    wait_for(lambda: query(prometheus, 'up{job="shop"} == 1')["data"]["result"])
    drive_traffic(server)
    time.sleep(3)
    drive_traffic(server)
    wait_for(lambda: query(prometheus, "shop:http_requests:rate5m > 0")["data"]["result"])
    return prometheus


def wait_for(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.5)


@pytest.mark.parametrize(("source", "name", "expr"), dashboard_queries() + rule_queries())
def test_query_evaluates_and_has_data_when_it_should(
    scraped: str, source: str, name: str, expr: str
) -> None:
    promql = expr.replace("$__rate_interval", "1m")
    body = query(scraped, promql)
    assert body["status"] == "success", f"{source} / {name}: {body.get('error')}"
    expect_data = source.endswith(".json") or source == "recording_rules.yml"
    if expect_data and not MAY_BE_EMPTY.search(expr):
        assert body["data"]["result"], f"{source} / {name} returned no data: {promql}"


def test_there_are_queries_to_check() -> None:
    assert len(dashboard_queries()) >= 20
    assert len(rule_queries()) == 30


def test_prometheus_sees_both_workers_as_one_target(scraped: str) -> None:
    result = query(scraped, 'sum(shop_workers{job="shop"})')["data"]["result"]
    assert float(result[0]["value"][1]) == 2
    assert query(scraped, 'shop_ready{job="shop"}')["data"]["result"][0]["value"][1] == "1"


def test_nothing_is_firing_on_a_healthy_service(scraped: str) -> None:
    firing = query(scraped, 'ALERTS{alertstate="firing"}')["data"]["result"]
    assert firing == []
