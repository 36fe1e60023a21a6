"""Grafana provisioning and the shop dashboards: datasources, variables, job selectors, rules."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import GRAFANA, ROOT, load_yaml

DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
SHOP_DASHBOARDS = [path for path in DASHBOARDS if path.name.startswith("shop-")]
# Grafana's own annotation source, present in every dashboard's default annotation list.
BUILT_IN = {"-- Grafana --": "grafana"}
DATASOURCE_VARIABLE = "${datasource}"
# PromQL words that are not metric names.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}
KEYWORDS |= {"unless", "offset", "bool", "inf", "nan"}


def provisioned_uids() -> dict[str, str]:
    config = load_yaml(GRAFANA / "provisioning/datasources/datasources.yaml")
    return {source["uid"]: source["type"] for source in config["datasources"]}


def datasource_refs(node: Any) -> Iterator[dict[str, Any]]:
    """Yield every {"type", "uid"} datasource reference anywhere in a dashboard."""
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict):
            yield node["datasource"]
        for value in node.values():
            yield from datasource_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from datasource_refs(value)


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panel targets, annotations and variables (but the job list)."""
    found = [t["expr"] for p in panels(dashboard) for t in p.get("targets", []) if t.get("expr")]
    found += [a["expr"] for a in dashboard["annotations"]["list"] if a.get("expr")]
    variables = dashboard["templating"]["list"]
    found += [v["definition"] for v in variables if v["type"] == "query" and v["name"] != "job"]
    return found


def selectors_without_job(expr: str) -> list[str]:
    """Return the metric selectors in ``expr`` that do not filter on ``job=~"$job"``."""
    text = re.sub(r"\[[^\]]*\]", "", expr)  # range and subquery durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"label_values\((.*),\s*\w+\)", r"\1", text)
    missing = []
    for match in re.finditer(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?\s*(\()?", text):
        name, braces, call = match.groups()
        if call or name in KEYWORDS:
            continue
        if not braces or 'job=~"$job"' not in braces:
            missing.append(name)
    return missing


def recording_rules() -> set[str]:
    groups = load_yaml(GRAFANA / "prometheus" / "recording_rules.yml")["groups"]
    return {rule["record"] for group in groups for rule in group["rules"]}


def test_datasources_have_the_fixed_uids() -> None:
    uids = provisioned_uids()
    assert uids["prometheus"] == "prometheus"
    assert uids["tempo"] == "tempo"


def test_the_shop_dashboards_exist() -> None:
    assert [path.name for path in SHOP_DASHBOARDS] == [
        "shop-business.json",
        "shop-overview.json",
        "shop-runtime.json",
    ]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_uses_only_provisioned_datasources(path: Path) -> None:
    dashboard = load(path)
    uids = provisioned_uids() | BUILT_IN
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    if "datasource" in variables:
        uids[DATASOURCE_VARIABLE] = variables["datasource"]["query"]
    refs = list(datasource_refs(dashboard))
    assert any(ref["type"] == "prometheus" for ref in refs), "no Prometheus query at all"
    for ref in refs:
        assert ref["uid"] in uids, ref
        assert ref["type"] == uids[ref["uid"]], ref


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_has_a_fixed_uid_and_no_numeric_id(path: Path) -> None:
    dashboard = load(path)
    # The k6 dashboard's file is load-test.json, its uid shop-load-test (issue 11).
    assert dashboard["uid"] == {"load-test": "shop-load-test"}.get(path.stem, path.stem)
    assert dashboard.get("id") is None


def test_dashboard_provider_points_where_compose_mounts_them() -> None:
    provider = load_yaml(GRAFANA / "provisioning/dashboards/dashboards.yaml")["providers"][0]
    compose = load_yaml(ROOT / "docker-compose.yml")["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in compose


@pytest.mark.parametrize("path", SHOP_DASHBOARDS, ids=lambda p: p.name)
class TestShopDashboard:
    def test_has_datasource_job_and_instance_variables(self, path: Path) -> None:
        variables = {v["name"]: v for v in load(path)["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert variables["job"]["current"]["value"] == "shop"
        assert variables["instance"]["includeAll"] and variables["instance"]["allValue"] == ".*"

    def test_every_query_selects_the_job(self, path: Path) -> None:
        for expr in queries(load(path)):
            assert selectors_without_job(expr) == [], expr

    def test_every_panel_queries_through_the_datasource_variable(self, path: Path) -> None:
        for panel in panels(load(path)):
            if panel["type"] != "text":
                assert panel["datasource"]["uid"] == DATASOURCE_VARIABLE, panel["title"]

    def test_every_panel_says_what_it_shows(self, path: Path) -> None:
        for panel in panels(load(path)):
            assert len(panel.get("description", "")) > 40, panel["title"]

    def test_firing_alerts_are_annotated(self, path: Path) -> None:
        exprs = [a.get("expr", "") for a in load(path)["annotations"]["list"]]
        assert 'ALERTS{alertstate="firing",job=~"$job"}' in exprs

    def test_panels_do_not_overlap(self, path: Path) -> None:
        taken: set[tuple[int, int]] = set()
        for panel in panels(load(path)):
            pos = panel["gridPos"]
            cells = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cells & taken, panel["title"]
            assert pos["x"] + pos["w"] <= 24, panel["title"]
            taken |= cells


def test_overview_uses_the_recording_rules_for_slis_and_budgets() -> None:
    used = " ".join(queries(load(GRAFANA / "dashboards" / "shop-overview.json")))
    for rule in (
        "shop:http_slow:ratio_rate5m",
        "shop:http_errors:ratio_rate1h",
        "shop:success_budget:remaining_ratio30d",
        "shop:latency_budget:remaining_ratio30d",
    ):
        assert rule in used


def test_every_recording_rule_is_used() -> None:
    """By a dashboard, an alert or another rule: none is computed for nothing."""
    texts = [
        (GRAFANA / "prometheus" / "alerts.yml").read_text(),
        *[path.read_text() for path in DASHBOARDS],
    ]
    rule_exprs = [
        rule["expr"]
        for group in load_yaml(GRAFANA / "prometheus" / "recording_rules.yml")["groups"]
        for rule in group["rules"]
    ]
    for rule in recording_rules():
        assert any(rule in text for text in texts + rule_exprs), rule


def test_transactions_panel_describes_the_three_outcomes() -> None:
    runtime = {p["title"]: p for p in panels(load(GRAFANA / "dashboards" / "shop-runtime.json"))}
    description = runtime["DB transactions by outcome (per second)"]["description"]
    for outcome in ("commit", "rollback", "read_only"):
        assert outcome in description
    assert "Readiness checks are not counted" in description


class TestJobSelectorCheck:
    @pytest.mark.parametrize(
        ("expr", "missing"),
        [
            ('sum(rate(x_total{job=~"$job"}[5m]))', []),
            ("sum(rate(x_total[5m]))", ["x_total"]),
            ('sum by (le) (rate(b{job=~"$job",le="0.05"}[1m])) / sum(c{a="b"})', ["c"]),
            ('label_values(up{job=~"$job"}, instance)', []),
            ("label_values(shop_workers, job)", ["shop_workers"]),
            ('1 - shop:x:ratio_rate5m{job=~"$job"} / 0.01', []),
        ],
    )
    def test_finds_selectors_without_the_job(self, expr: str, missing: list[str]) -> None:
        assert selectors_without_job(expr) == missing


@pytest.mark.parametrize(
    "runbook", sorted((ROOT / "docs" / "runbooks").glob("*.md")), ids=lambda p: p.name
)
def test_runbooks_name_only_panels_that_exist(runbook: Path) -> None:
    """A runbook's *italic* names are dashboard panels (a title or the start of one)."""
    titles = {panel["title"] for path in DASHBOARDS for panel in panels(load(path))}
    text = re.sub(r"\s*\n\s*", " ", runbook.read_text())
    for name in re.findall(r"(?<![*\w])\*([^*]+?)\*(?![*\w])", text):
        assert any(title.startswith(name) for title in titles), name
