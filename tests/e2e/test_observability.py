"""Metrics, traces and logs of a real two-worker gunicorn server (/debug: test_profiling.py)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import DEBUG_TOKEN, Server
from tests.factories import random_username

pytestmark = pytest.mark.e2e
DEBUG = {"Authorization": f"Bearer {DEBUG_TOKEN}"}


def fresh(method: str, url: str, **kwargs: Any) -> requests.Response:
    """Send on a new connection, so the kernel may hand it to either worker."""
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    return requests.request(method, url, headers=headers, timeout=30, **kwargs)


def samples(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = fresh("GET", f"{server.url}/metrics").text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(snapshot: dict[Any, float], name: str, **labels: str) -> float:
    return snapshot.get((name, frozenset(labels.items())), 0.0)


def sign_up(server: Server, password: str = "pw") -> tuple[str, dict[str, str]]:
    name = random_username()
    reply = fresh("POST", f"{server.url}/api/auth", json={"username": name, "password": password})
    return name, {"Authorization": f"Bearer {reply.json()['token']}"}


def eventually(check: Callable[[], Any], timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


class TestMetrics:
    def test_counts_from_all_workers_are_summed(self, server: Server) -> None:
        pids = {
            fresh("GET", f"{server.url}/debug/pprof/", headers=DEBUG).text.split()[6]
            for _ in range(30)
        }
        assert len(pids) == 2, f"requests did not spread over both workers: {pids}"

        _, auth = sign_up(server)
        info = {
            "http_request_method": "GET",
            "http_route": "/api/info",
            "http_response_status_code": "200",
        }
        before = value(samples(server), "http_server_request_duration_seconds_count", **info)
        for _ in range(40):
            assert fresh("GET", f"{server.url}/api/info", headers=auth).status_code == 200
        for _ in range(5):  # every scrape, whichever worker answers, shows the same sum
            after = value(samples(server), "http_server_request_duration_seconds_count", **info)
            assert after - before == 40

    def test_routes_are_templated_and_unknown_paths_fold(self, server: Server) -> None:
        _, auth = sign_up(server)
        fresh("GET", f"{server.url}/api/buy/cup", headers=auth)
        fresh("GET", f"{server.url}/wp-admin/{secrets.token_hex(4)}")
        routes = {dict(labels).get("http_route") for name, labels in samples(server)}
        assert "/api/buy/<item>" in routes and "<unmatched>" in routes
        assert not any(r and ("/api/buy/cup" in r or "wp-admin" in r) for r in routes)
        assert not {"/metrics", "/healthz", "/readyz"} & routes

    def test_business_counters_move_by_the_right_amounts(self, server: Server) -> None:
        before = samples(server)
        bob, _ = sign_up(server)
        _, alice = sign_up(server)
        for item in ("cup", "cup", "pen"):
            fresh("GET", f"{server.url}/api/buy/{item}", headers=alice)
        fresh(
            "POST", f"{server.url}/api/sendCoin", json={"toUser": bob, "amount": 7}, headers=alice
        )
        fresh(
            "POST",
            f"{server.url}/api/sendCoin",
            json={"toUser": bob, "amount": 10**6},
            headers=alice,
        )
        fresh("POST", f"{server.url}/api/auth", json={"username": bob, "password": "wrong"})
        fresh("GET", f"{server.url}/api/info")
        after = samples(server)

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert delta("shop_users_created_total") == 2
        assert delta("shop_purchases_total", item="cup") == 2
        assert delta("shop_purchases_total", item="pen") == 1
        assert delta("shop_coins_spent_total") == 50
        assert delta("shop_coin_transfers_total") == 1
        assert delta("shop_coins_transferred_total") == 7
        assert delta("shop_business_rejections_total", reason="insufficient_funds") == 1
        assert delta("shop_auth_failures_total", reason="invalid_credentials") == 1
        assert delta("shop_auth_failures_total", reason="missing_token") == 1
        assert delta("shop_db_transaction_duration_seconds_count", outcome="commit") >= 6
        pool_sizes = [v for (name, _), v in after.items() if name == "shop_db_pool_size"]
        assert pool_sizes == [10, 10]  # DB_POOL_SIZE, one series per worker (label pid)


class TestTraces:
    def test_request_span_honours_traceparent_and_parents_db_spans(self, server: Server) -> None:
        _, auth = sign_up(server)
        trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
        headers = {**auth, "traceparent": f"00-{trace_id}-{parent}-01"}
        reply = fresh("GET", f"{server.url}/api/info", headers=headers)
        assert reply.headers["X-Trace-Id"] == trace_id

        spans = eventually(
            lambda: [
                s
                for s in server.receiver.in_trace(trace_id)
                if s.kind == 2 or s.name.startswith("SELECT")
            ],
            timeout=10,
        )
        by_id = {s.span_id: s for s in server.receiver.in_trace(trace_id)}
        (root,) = [s for s in by_id.values() if s.kind == 2]  # SPAN_KIND_SERVER
        assert spans
        assert root.name == "GET /api/info"
        assert root.parent_span_id == parent
        assert root.attributes["http.route"] == "/api/info"
        assert root.attributes["http.response.status_code"] == 200
        assert root.service_name == "shop-under-test"
        db_spans = [
            s
            for s in by_id.values()
            if s.attributes.get("db.system") == "postgresql"
            or s.attributes.get("db.system.name") == "postgresql"
        ]
        assert db_spans, [s.name for s in by_id.values()]
        for span in db_spans:
            ancestors = []
            while span.parent_span_id in by_id:
                span = by_id[span.parent_span_id]
                ancestors.append(span.name)
            assert ancestors[-1] == "GET /api/info"
            assert "unit_of_work" in ancestors

    def test_login_has_a_password_span(self, server: Server) -> None:
        trace_id = secrets.token_hex(16)
        headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
        body = {"username": random_username(), "password": "pw"}
        fresh("POST", f"{server.url}/api/auth", json=body, headers=headers)
        names = eventually(
            lambda: {
                s.name for s in server.receiver.in_trace(trace_id) if s.name.startswith("password.")
            }
        )
        assert names == {"password.hash"}

    def test_operational_endpoints_are_not_traced(self, server: Server) -> None:
        trace_id = secrets.token_hex(16)
        headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
        for path in ("/healthz", "/readyz", "/metrics"):
            assert "X-Trace-Id" not in fresh("GET", f"{server.url}{path}", headers=headers).headers
        time.sleep(0.5)
        assert [s.name for s in server.receiver.in_trace(trace_id) if s.kind == 2] == []


class TestLogs:
    def test_every_line_is_json_and_access_lines_carry_trace_ids(self, server: Server) -> None:
        _, auth = sign_up(server)
        trace_id = secrets.token_hex(16)
        headers = {
            **auth,
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
            "X-Request-Id": "req-123",
        }
        reply = fresh("GET", f"{server.url}/api/buy/pen", headers=headers)
        assert reply.headers["X-Request-Id"] == "req-123"

        def access_line() -> dict[str, Any] | None:
            lines = [json.loads(line) for line in server.log_lines()]
            found = [e for e in lines if e.get("trace_id") == trace_id and e["event"] == "request"]
            return found[0] if found else None

        line = eventually(access_line)
        assert line is not None
        assert line["route"] == "/api/buy/<item>" and line["status"] == 200
        assert line["request_id"] == "req-123"
        assert isinstance(line["user_id"], int) and line["duration_ms"] > 0
        assert len(line["span_id"]) == 16
        exported = eventually(
            lambda: line["span_id"] in {s.span_id for s in server.receiver.in_trace(trace_id)}
        )
        assert exported, "the logged span_id is not an exported span"
        for raw in server.log_lines():
            json.loads(raw)  # gunicorn's own lines too

    def test_no_password_or_token_reaches_the_log(self, server: Server) -> None:
        password = "hunter2-" + secrets.token_hex(8)
        name, auth = sign_up(server, password=password)
        fresh("POST", f"{server.url}/api/auth", json={"username": name, "password": "x" + password})
        fresh("GET", f"{server.url}/api/info", headers=auth)
        fresh("GET", f"{server.url}/api/info", headers={"Authorization": "Bearer " + "e" * 40})
        time.sleep(0.5)
        text = server.log_path.read_text()
        token = auth["Authorization"].removeprefix("Bearer ")
        assert password not in text
        assert token not in text and token.split(".")[2] not in text
        assert DEBUG_TOKEN not in text
