"""The worker's door, in a real gunicorn: arrival times from the kernel, refusals at once.

A worker is frozen (SIGSTOP) while requests arrive, as a saturated CPU would leave them
waiting; the kernel still takes the connections and their bytes, and stamps them.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psutil
import psycopg
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import Server, eventually, fresh, running_server, server_env, sign_up
from tests.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.e2e

BUSY = {"errors": "server busy, retry shortly"}


@pytest.fixture(scope="module")
def door(
    database_url: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One worker (so every request meets the same door), a 1 s budget, one API request at
    a time."""
    workdir = tmp_path_factory.mktemp("door")
    env = server_env(
        DATABASE_URL=database_url,
        JWT_SECRET=jwt_secret,
        WEB_CONCURRENCY="1",
        REQUEST_TIMEOUT="1",
        MAX_IN_FLIGHT="1",
        LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "metrics"),
    )
    with running_server(env, workdir, OtlpReceiver()) as running:
        yield running


def metric(server: Server, name: str, **labels: str) -> float:
    text = fresh("GET", f"{server.url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


@contextmanager
def frozen(server: Server, seconds: float) -> Iterator[None]:
    """Stop the server's worker for ``seconds``; the block sends what must wait meanwhile."""
    (worker,) = psutil.Process(server.process.pid).children()
    os.kill(worker.pid, signal.SIGSTOP)
    until = time.monotonic() + seconds
    try:
        yield
        time.sleep(max(0.0, until - time.monotonic()))
    finally:
        os.kill(worker.pid, signal.SIGCONT)


def in_background(call: Callable[[], Any]) -> Callable[[], Any]:
    """Start ``call`` in a thread; return a function that waits for its result."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()))
    thread.start()

    def outcome() -> Any:
        thread.join(timeout=30)
        return result[0]

    return outcome


def timed(call: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    started = time.monotonic()
    reply = call()
    return reply, time.monotonic() - started


def access_line(server: Server, request_id: str) -> dict[str, Any]:
    for line in reversed(server.log_lines()):
        if request_id in line and '"shop.access"' in line:
            found: dict[str, Any] = json.loads(line)
            return found
    raise AssertionError(f"no access line for {request_id}")


class TestArrival:
    def test_time_spent_waiting_for_the_worker_counts_in_the_log_and_the_budget(
        self, door: Server
    ) -> None:
        user = sign_up(door.url)
        request_id = uuid.uuid4().hex
        headers = user.headers | {"X-Request-Id": request_id}
        with frozen(door, 0.3):
            answer = in_background(
                lambda: timed(lambda: fresh("GET", f"{door.url}/api/info", headers=headers))
            )
        reply, seconds = answer()
        assert reply.status_code == 200, reply.text
        line = access_line(door, request_id)
        assert line["queue_ms"] >= 250
        assert line["duration_ms"] >= line["queue_ms"]
        # What the client waited is what the service says it took, less the trip.
        assert seconds * 1000 - line["duration_ms"] < 50


class TestRefusal:
    def test_requests_that_waited_past_half_their_budget_get_503_at_once(
        self, door: Server
    ) -> None:
        user = sign_up(door.url)
        refused_before = metric(door, "shop_unavailable_responses_total", reason="event_loop")
        cpu_before = metric(door, "shop_admission_refusal_cpu_seconds_total")
        with frozen(door, 0.8):  # past max_wait: half of REQUEST_TIMEOUT=1
            api = [
                in_background(lambda: fresh("GET", f"{door.url}/api/info", headers=user.headers))
                for _ in range(3)
            ]
            health = in_background(lambda: fresh("GET", f"{door.url}/healthz"))
        for outcome in api:
            reply = outcome()
            assert reply.status_code == 503
            assert reply.headers["Retry-After"] == "1"
            assert reply.headers["Content-Type"] == "application/json"
            assert reply.json() == BUSY
        assert health().status_code == 200, "ops endpoints are never refused"
        after = metric(door, "shop_unavailable_responses_total", reason="event_loop")
        assert after == refused_before + 3
        assert metric(door, "shop_admission_refusal_cpu_seconds_total") > cpu_before
        assert metric(door, "shop_request_queue_seconds_count", outcome="refused") >= 3
        assert (
            metric(
                door,
                "http_server_request_duration_seconds_count",
                http_route="/api/info",
                http_response_status_code="503",
            )
            >= 3
        )

    def test_a_kept_alive_connection_serves_the_next_request_after_a_refusal(
        self, door: Server
    ) -> None:
        user = sign_up(door.url)
        with requests.Session() as session:
            session.headers.update(user.headers)
            assert session.get(f"{door.url}/api/info", timeout=10).status_code == 200
            with frozen(door, 0.8):
                refused = in_background(lambda: session.get(f"{door.url}/api/info", timeout=10))
            assert refused().status_code == 503
            again = session.get(f"{door.url}/api/buy/pen", timeout=10)
        assert again.status_code == 200, again.text

    def test_past_max_in_flight_an_api_request_is_refused_for_it(
        self, door: Server, database_url: str
    ) -> None:
        buyer = sign_up(door.url)
        other = sign_up(door.url)
        refused_before = metric(door, "shop_unavailable_responses_total", reason="in_flight")
        with psycopg.connect(database_url) as lock:
            lock.execute("SELECT 1 FROM users WHERE username = %s FOR UPDATE", (buyer.name,))
            buying = in_background(
                lambda: fresh("GET", f"{door.url}/api/buy/pen", headers=buyer.headers)
            )
            assert eventually(  # the purchase, the one request allowed in, waits on the row
                lambda: lock.execute(
                    "SELECT 1 FROM pg_stat_activity"
                    " WHERE application_name = 'shop' AND wait_event_type = 'Lock'"
                ).fetchone()
            ), "the purchase never waited on the row lock"
            refused = fresh("GET", f"{door.url}/api/info", headers=other.headers)
            lock.rollback()
        assert buying().status_code == 200
        assert (refused.status_code, refused.json()) == (503, BUSY)
        after = metric(door, "shop_unavailable_responses_total", reason="in_flight")
        assert after == refused_before + 1
