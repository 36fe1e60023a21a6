"""Metrics, traces and logs of a real two-worker gunicorn server (/debug: test_profiling.py)."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import random_username
from tests.helpers import (
    DEBUG_TOKEN,
    Server,
    eventually,
    fresh,
    running_server,
    server_env,
    sign_up,
)
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan

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
        pool_sizes = [v for (name, _), v in after.items() if name == "shop_db_pool_size"]
        assert pool_sizes == [10, 10]  # DB_POOL_SIZE, one series per worker (label pid)


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
            assert ancestors == ["GET /api/info"]  # statements hang under the request

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
        eventually(lambda: server.receiver.in_trace(marker), what="the marker's export")
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
        assert line["service"] == "shop-under-test" and line["version"]
        for raw in server.log_lines():
            entry = json.loads(raw)  # gunicorn's own lines too
            assert isinstance(entry["pid"], int) and entry["service"] and entry["version"], entry

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
        eventually(lambda: set(ids) <= logged_request_ids(server), what="four access lines")
        text = server.log_path.read_text()
        token = auth["Authorization"].removeprefix("Bearer ")
        assert password not in text
        assert token not in text and token.split(".")[2] not in text
        assert DEBUG_TOKEN not in text


SERVER_KIND = 2  # SPAN_KIND_SERVER
STATUS_ERROR = 2


@pytest.fixture(scope="module")
def policy_server(
    database_url: str, jwt_secret: str, engine: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One worker on the default policy with no sampled share, so every export has a reason.

    One pooled connection, waited for at most 0.3 s (enough for the previous request's
    teardown to give it back), makes a 5xx on demand; argon2id at 12 passes makes every
    login slower than the 50 ms threshold.
    """
    receiver = OtlpReceiver().start()
    workdir = tmp_path_factory.mktemp("policy-server")
    env = server_env(
        DATABASE_URL=database_url,
        JWT_SECRET=jwt_secret,
        LOG_FORMAT="json",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME="shop-policy-test",
        OTEL_BSP_SCHEDULE_DELAY="100",
        DEPLOYMENT_ENVIRONMENT="e2e",
        TRACE_SAMPLE_RATIO="0",
        DB_POOL_SIZE="1",
        DB_POOL_TIMEOUT="0.3",
        DB_RETRY_ATTEMPTS="1",
        # Deadlines longer than the test's lock, so only the test ends the wait.
        DB_LOCK_TIMEOUT="30",
        DB_STATEMENT_TIMEOUT="30",
        REQUEST_TIMEOUT="40",
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "metrics"),
    )
    env.update(
        WEB_CONCURRENCY="1",
        PASSWORD_HASH_TIME_COST="12",
        PASSWORD_HASH_MEMORY_KIB=str(19 * 1024),
    )
    with running_server(env, workdir, receiver) as running:
        yield running


def exported_trace(server: Server, trace_id: str) -> list[ReceivedSpan]:
    """Wait for a trace's server span to arrive, then return every span of the trace."""
    eventually(lambda: any(s.kind == SERVER_KIND for s in server.receiver.in_trace(trace_id)))
    return server.receiver.in_trace(trace_id)


def assert_whole(spans: list[ReceivedSpan], root_name: str) -> ReceivedSpan:
    """Check one server span named ``root_name`` and every other span hanging under it."""
    by_id = {span.span_id: span for span in spans}
    (root,) = [span for span in spans if span.kind == SERVER_KIND]
    assert root.name == root_name
    for span in spans:
        while span is not root:
            assert span.parent_span_id in by_id, f"{span.name} lost its parent"
            span = by_id[span.parent_span_id]
    return root


def is_db_span(span: ReceivedSpan) -> bool:
    system = span.attributes.get("db.system.name", span.attributes.get("db.system"))
    return bool(system == "postgresql")


def kept_count(server: Server, reason: str) -> float:
    return value(samples(server), "shop_traces_kept_total", reason=reason)


def log_lines_of(server: Server, trace_id: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in server.log_lines())
    return [line for line in lines if line.get("trace_id") == trace_id]


class TestTracePolicy:
    def test_a_slow_login_arrives_whole_with_its_password_hash(self, policy_server: Server) -> None:
        body = {"username": random_username(), "password": "pw"}
        reply = fresh("POST", f"{policy_server.url}/api/auth", json=body)
        assert reply.status_code == 200

        spans = exported_trace(policy_server, reply.headers["X-Trace-Id"])
        root = assert_whole(spans, "POST /api/auth")
        assert root.duration_ns > 50_000_000
        names = {span.name for span in spans}
        assert "password.hash" in names
        assert any(is_db_span(span) for span in spans), names

    def test_spans_name_the_service_build_worker_and_environment(
        self, policy_server: Server
    ) -> None:
        auth = sign_up(policy_server.url).headers
        trace_id = secrets.token_hex(16)
        headers = {**auth, "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
        fresh("GET", f"{policy_server.url}/api/info", headers=headers)
        root = assert_whole(exported_trace(policy_server, trace_id), "GET /api/info")
        (access,) = eventually(lambda: log_lines_of(policy_server, trace_id))
        assert root.resource["service.name"] == access["service"] == "shop-policy-test"
        assert root.resource["service.version"] == access["version"]
        assert root.resource["process.pid"] == access["pid"]
        assert root.resource["deployment.environment.name"] == "e2e"
        assert root.resource["host.name"]

    def test_a_request_stuck_on_a_lock_and_the_5xx_it_causes_arrive_whole(
        self, policy_server: Server, database_url: str
    ) -> None:
        buyer, buyer_auth = sign_up(policy_server.url)
        _, other_auth = sign_up(policy_server.url)
        errors_before = kept_count(policy_server, "error")
        replies: dict[str, requests.Response] = {}

        def buy() -> None:
            replies["buy"] = fresh("GET", f"{policy_server.url}/api/buy/pen", headers=buyer_auth)

        with psycopg.connect(database_url) as lock:
            lock.execute("SELECT 1 FROM users WHERE username = %s FOR UPDATE", (buyer,))
            buying = threading.Thread(target=buy)
            buying.start()
            waiting = eventually(  # the buy holds the only pooled connection, waiting
                lambda: lock.execute(
                    "SELECT 1 FROM pg_stat_activity"
                    " WHERE application_name = 'shop' AND wait_event_type = 'Lock'"
                ).fetchone()
            )
            assert waiting, "the purchase never waited on the row lock"
            refused = fresh("GET", f"{policy_server.url}/api/info", headers=other_auth)
            lock.rollback()
        buying.join()
        assert refused.status_code == 503, refused.text
        assert replies["buy"].status_code == 200, replies["buy"].text

        failed = exported_trace(policy_server, refused.headers["X-Trace-Id"])
        root = assert_whole(failed, "GET /api/info")
        assert root.status_code == STATUS_ERROR and root.attributes["error.type"]
        assert "exception" in root.events
        assert kept_count(policy_server, "error") == errors_before + 1

        slow = exported_trace(policy_server, replies["buy"].headers["X-Trace-Id"])
        root = assert_whole(slow, "GET /api/buy/<item>")
        assert root.status_code != STATUS_ERROR and root.duration_ns > 50_000_000
        assert any(is_db_span(span) for span in slow)

    def test_fast_successful_requests_stay_home_unless_the_caller_sampled_them(
        self, policy_server: Server
    ) -> None:
        auth = sign_up(policy_server.url).headers
        fast = []
        for number in range(25):
            headers = dict(auth)
            if number % 5 == 0:  # a caller that did not sample
                headers["traceparent"] = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"
            reply = fresh("GET", f"{policy_server.url}/api/info", headers=headers)
            fast.append(reply.headers["X-Trace-Id"])
        marker = secrets.token_hex(16)
        headers = {**auth, "traceparent": f"00-{marker}-{secrets.token_hex(8)}-01"}
        fresh("GET", f"{policy_server.url}/api/info", headers=headers)
        # Kept traces leave in order and dropped ones never queue: once the caller-sampled
        # marker has arrived, anything of the earlier requests would have too.
        assert_whole(exported_trace(policy_server, marker), "GET /api/info")

        durations = {
            line["trace_id"]: line["duration_ms"]
            for line in map(json.loads, policy_server.log_lines())
            if line.get("trace_id") in fast and line.get("event") == "request"
        }
        clearly_fast = [trace_id for trace_id in fast if durations[trace_id] < 25]
        assert len(clearly_fast) >= 20, f"the box is too slow to tell: {durations}"
        exported = {span.trace_id for span in policy_server.receiver.spans}
        assert not exported & set(clearly_fast)
