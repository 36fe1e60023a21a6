"""Metrics, traces, logs and /debug of a real two-worker gunicorn server."""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import DEBUG_TOKEN, Server, fresh, sign_up
from tests.factories import eventually, random_username

pytestmark = pytest.mark.e2e
DEBUG = {"Authorization": f"Bearer {DEBUG_TOKEN}"}


def samples(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = fresh("GET", f"{server.url}/metrics").text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(snapshot: dict[Any, float], name: str, **labels: str) -> float:
    return snapshot.get((name, frozenset(labels.items())), 0.0)


def logged_request_ids(server: Server) -> set[str]:
    """Return the request ids of the access lines in the server's log so far."""
    found = set()
    for line in server.log_lines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line still being written
        if entry.get("event") == "request":
            found.add(entry.get("request_id"))
    return found


class TestMetrics:
    def test_counts_from_all_workers_are_summed(self, server: Server) -> None:
        pids = {
            fresh("GET", f"{server.url}/debug/pprof/", headers=DEBUG).text.split()[6]
            for _ in range(30)
        }
        assert len(pids) == 2, f"requests did not spread over both workers: {pids}"

        _, auth = sign_up(server.url)
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
        _, auth = sign_up(server.url)
        fresh("GET", f"{server.url}/api/buy/cup", headers=auth)
        fresh("GET", f"{server.url}/wp-admin/{secrets.token_hex(4)}")
        routes = {dict(labels).get("http_route") for name, labels in samples(server)}
        assert "/api/buy/<item>" in routes and "<unmatched>" in routes
        assert not any(r and ("/api/buy/cup" in r or "wp-admin" in r) for r in routes)
        assert not {"/metrics", "/healthz", "/readyz"} & routes

    def test_business_counters_move_by_the_right_amounts(self, server: Server) -> None:
        before = samples(server)
        bob, _ = sign_up(server.url)
        _, alice = sign_up(server.url)
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
        assert value(after, "shop_db_pool_size") == 20  # 2 workers x DB_POOL_SIZE 10


class TestTraces:
    def test_request_span_honours_traceparent_and_parents_db_spans(self, server: Server) -> None:
        _, auth = sign_up(server.url)
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
        """All on one keep-alive connection, so one worker: a traced request sent after them
        is exported after any span they could have made (one export queue per worker)."""
        trace_id, marker = secrets.token_hex(16), secrets.token_hex(16)
        session = requests.Session()
        for path in ("/healthz", "/readyz", "/metrics"):
            headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
            reply = session.get(f"{server.url}{path}", headers=headers, timeout=30)
            assert "X-Trace-Id" not in reply.headers
        headers = {"traceparent": f"00-{marker}-{secrets.token_hex(8)}-01"}
        session.get(f"{server.url}/api/info", headers=headers, timeout=30)
        assert eventually(lambda: server.receiver.in_trace(marker)), "the marker was not exported"
        assert [s.name for s in server.receiver.in_trace(trace_id) if s.kind == 2] == []


class TestLogs:
    def test_every_line_is_json_and_access_lines_carry_trace_ids(self, server: Server) -> None:
        _, auth = sign_up(server.url)
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
        ids = [secrets.token_hex(8) for _ in range(4)]
        name = random_username()
        body = {"username": name, "password": password}
        auth_url, info_url = f"{server.url}/api/auth", f"{server.url}/api/info"
        reply = fresh("POST", auth_url, json=body, headers={"X-Request-Id": ids[0]})
        auth = {"Authorization": f"Bearer {reply.json()['token']}"}
        body = {"username": name, "password": "x" + password}
        fresh("POST", auth_url, json=body, headers={"X-Request-Id": ids[1]})
        fresh("GET", info_url, headers={**auth, "X-Request-Id": ids[2]})
        bad = {"Authorization": "Bearer " + "e" * 40, "X-Request-Id": ids[3]}
        fresh("GET", info_url, headers=bad)
        # A request's access line is the last thing it logs: once all four are there, so
        # is everything they logged.
        assert eventually(lambda: set(ids) <= logged_request_ids(server)), "access lines missing"
        text = server.log_path.read_text()
        token = auth["Authorization"].removeprefix("Bearer ")
        assert password not in text
        assert token not in text and token.split(".")[2] not in text
        assert DEBUG_TOKEN not in text


class TestDebug:
    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
    def test_refuses_without_the_token(self, server: Server, headers: dict[str, str]) -> None:
        for path in ("/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/goroutine"):
            reply = fresh("GET", f"{server.url}{path}", headers=headers)
            assert reply.status_code == 401 and "errors" in reply.json()

    def test_profile_under_load_contains_the_services_frames(self, server: Server) -> None:
        _, auth = sign_up(server.url)
        stop = threading.Event()

        def load() -> None:
            # A new connection per request: kept-alive ones could all land on the
            # worker that is not being profiled (SO_REUSEPORT hashes per connection).
            while not stop.is_set():
                fresh("GET", f"{server.url}/api/info", headers=auth)

        threads = [threading.Thread(target=load) for _ in range(6)]
        for thread in threads:
            thread.start()
        try:
            reply = fresh(
                "GET", f"{server.url}/debug/pprof/profile?seconds=2&format=collapsed", headers=DEBUG
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert reply.status_code == 200
        assert reply.headers["X-Profiled-Pid"].isdigit()
        assert "shop/api/info.py" in reply.text or "info.py" in reply.text
        assert "shop/db/users.py" in reply.text or "users.py" in reply.text

    @pytest.mark.parametrize("fmt", ["speedscope", "html"])
    def test_profile_renders_speedscope_and_html(self, server: Server, fmt: str) -> None:
        url = f"{server.url}/debug/pprof/profile?seconds=1&format={fmt}"
        reply = fresh("GET", url, headers=DEBUG)
        assert reply.status_code == 200
        if fmt == "speedscope":
            assert "speedscope" in reply.json()["$schema"]
        else:
            assert reply.text.lstrip().lower().startswith("<!doctype html")

    @pytest.mark.parametrize("query", ["seconds=0", "seconds=61", "seconds=x", "format=svg"])
    def test_profile_refuses_bad_parameters(self, server: Server, query: str) -> None:
        reply = fresh("GET", f"{server.url}/debug/pprof/profile?{query}", headers=DEBUG)
        assert reply.status_code == 400 and reply.json()["errors"]

    def test_heap_starts_then_diffs(self, server: Server) -> None:
        with requests.Session() as session:  # one connection: one worker
            session.headers.update(DEBUG)
            first = session.get(f"{server.url}/debug/pprof/heap", timeout=10).text
            second = session.get(f"{server.url}/debug/pprof/heap", timeout=10).text
            stopped = session.get(f"{server.url}/debug/pprof/heap?stop=1", timeout=10).text
        assert "started" in first or "growth" in first
        assert "growth since the previous call" in second
        assert "stopped" in stopped

    def test_goroutine_dump_lists_greenlets_and_threads(self, server: Server) -> None:
        reply = fresh("GET", f"{server.url}/debug/pprof/goroutine", headers=DEBUG)
        assert "Greenlet" in reply.text and "--- thread" in reply.text
