"""Grafana provisioning: dashboards refer only to the provisioned datasource uids."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack.conftest import GRAFANA, ROOT, load_yaml

DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# Grafana's own annotation source, present in every dashboard's default annotation list.
BUILT_IN = {"-- Grafana --": "grafana"}


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


def test_datasources_have_the_fixed_uids() -> None:
    assert provisioned_uids() == {"prometheus": "prometheus", "tempo": "tempo"}


def test_the_dashboards_exist() -> None:
    assert [path.name for path in DASHBOARDS] == [
        "load-test.json",
        "shop-business.json",
        "shop-overview.json",
        "shop-runtime.json",
    ]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_uses_only_provisioned_datasources(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    uids = provisioned_uids() | BUILT_IN
    refs = list(datasource_refs(dashboard))
    assert any(ref["uid"] == "prometheus" for ref in refs), "no Prometheus query at all"
    for ref in refs:
        assert ref["uid"] in uids, ref
        assert ref["type"] == uids[ref["uid"]], ref


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_has_a_fixed_uid_and_no_numeric_id(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    # The k6 dashboard's file is load-test.json, its uid shop-load-test (issue 11).
    assert dashboard["uid"] == {"load-test": "shop-load-test"}.get(path.stem, path.stem)
    assert dashboard.get("id") is None


def test_dashboard_provider_points_where_compose_mounts_them() -> None:
    provider = load_yaml(GRAFANA / "provisioning/dashboards/dashboards.yaml")["providers"][0]
    compose = load_yaml(ROOT / "docker-compose.yml")["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in compose
