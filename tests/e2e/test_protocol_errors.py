"""gunicorn's own refusals, in a real gunicorn: JSON ``errors`` bodies, each status documented.

Requests gunicorn cannot parse never reach the app; they are written raw to a socket here,
as a broken client or a scanner would send them. Then schemathesis, from the document the
server serves, sends /debug/pprof requests with URLs past gunicorn's request-line limit
(the undocumented HTML 414s it found before).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shop.api.openapi.components import (
    LIMIT_REQUEST_FIELD_SIZE,
    LIMIT_REQUEST_FIELDS,
    LIMIT_REQUEST_LINE,
)
from tests.contract import check
from tests.helpers import Server, fresh, running_server, server_env
from tests.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.e2e

DEBUG_TOKEN = "debug-token-for-protocol-errors"
DEBUG = {"Authorization": f"Bearer {DEBUG_TOKEN}"}
LONG = "a" * 9000  # a 9000-byte request line: over LIMIT_REQUEST_LINE
SECRET = "s3cr3t-do-not-echo"


@pytest.fixture(scope="module")
def gate(
    database_url: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One worker with /debug on, of its own: the fuzz below starts heap tracing in it."""
    workdir = tmp_path_factory.mktemp("gate")
    env = server_env(
        DATABASE_URL=database_url,
        JWT_SECRET=jwt_secret,
        WEB_CONCURRENCY="1",
        DEBUG_TOKEN=DEBUG_TOKEN,
        LOG_FORMAT="json",
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "metrics"),
    )
    with running_server(env, workdir, OtlpReceiver()) as running:
        yield running


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


def exchange(server: Server, raw: bytes) -> Answer:
    """Send ``raw`` on a connection of its own; read the answer until the server closes it."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return Answer(int(status_line.split(" ")[1]), headers, body)


def request(target: str, *fields: str, start: str = "GET", version: str = "HTTP/1.1") -> bytes:
    head = [f"{start} {target} {version}", "Host: shop", *fields]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


MANY_FIELDS = [f"X-Field-{n}: {n}" for n in range(LIMIT_REQUEST_FIELDS + 1)]
# (what is sent, the method and path it would have had, the status gunicorn answers)
REFUSED = [
    pytest.param(
        request(f"/debug/pprof/heap?pad={LONG}"), "GET", "/debug/pprof/heap", 414, id="long-line"
    ),
    pytest.param(
        request(f"/api/info?token={SECRET}{LONG}"), "GET", "/api/info", 414, id="long-api-line"
    ),
    pytest.param(b"GET /api/info\r\nHost: shop\r\n\r\n", "GET", "/api/info", 400, id="no-version"),
    pytest.param(
        request(f"/api/info?{SECRET}", start="G(T"), "GET", "/api/info", 400, id="bad-method"
    ),
    pytest.param(
        request("/healthz", version="HTTP/2.0"), "GET", "/healthz", 400, id="http-version-2.0"
    ),
    pytest.param(
        request("/healthz", version="HTTP/0.9"), "GET", "/healthz", 400, id="http-version-0.9"
    ),
    pytest.param(
        request("/healthz", version="HTTP/1.10"), "GET", "/healthz", 400, id="http-version-1.10"
    ),
    pytest.param(request("/healthz", version="HTPT/1.1"), "GET", "/healthz", 400, id="not-http"),
    pytest.param(request("/api/info", *MANY_FIELDS), "GET", "/api/info", 431, id="many-fields"),
    pytest.param(
        request("/api/info", f"X-Big: {SECRET}" + "b" * LIMIT_REQUEST_FIELD_SIZE),
        "GET",
        "/api/info",
        431,
        id="field-too-large",
    ),
    pytest.param(
        request("/readyz", f"Bad {SECRET}: x"), "GET", "/readyz", 400, id="bad-field-name"
    ),
    pytest.param(request("/readyz", "no colon here"), "GET", "/readyz", 400, id="no-colon"),
    pytest.param(
        request("/api/auth", "Expect: 200-ok", start="POST"), "POST", "/api/auth", 417, id="expect"
    ),
    pytest.param(
        request("/api/sendCoin", "Transfer-Encoding: zstd", start="POST"),
        "POST",
        "/api/sendCoin",
        501,
        id="transfer-coding",
    ),
]


@pytest.fixture(scope="module")
def served_document(gate: Server) -> dict[str, Any]:
    document: dict[str, Any] = fresh("GET", f"{gate.url}/openapi.json").json()
    return document


class TestRefusalsAreJson:
    @pytest.mark.parametrize(("raw", "method", "path", "status"), REFUSED)
    def test_a_request_gunicorn_cannot_parse_gets_a_documented_json_error(
        self,
        gate: Server,
        served_document: dict[str, Any],
        raw: bytes,
        method: str,
        path: str,
        status: int,
    ) -> None:
        answer = exchange(gate, raw)
        assert answer.status == status, answer
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.headers["Connection"] == "close"
        assert int(answer.headers["Content-Length"]) == len(answer.body)
        errors = json.loads(answer.body)["errors"]
        assert isinstance(errors, str) and errors
        assert SECRET not in errors and "aaaa" not in errors and "<" not in errors
        assert str(status) in served_document["paths"][path][method.lower()]["responses"]
        check(method, path, answer.status, answer.headers, answer.body)

    def test_gunicorn_still_logs_what_it_refused(self, gate: Server) -> None:
        exchange(gate, request("/healthz", version="HTTP/9.9"))
        warnings = [line for line in gate.log_lines() if "Invalid request from ip=" in line]
        assert any("Invalid HTTP Version: (9, 9)" in line for line in warnings), warnings[-5:]

    def test_the_worker_serves_on_after_refusals(self, gate: Server) -> None:
        for _ in range(3):
            exchange(gate, request("/healthz", "no colon here"))
        assert fresh("GET", f"{gate.url}/healthz").status_code == 200

    def test_a_request_line_at_the_limit_is_still_served(self, gate: Server) -> None:
        target = "/healthz?pad="
        line = f"GET {target} HTTP/1.1"
        padded = target + "p" * (LIMIT_REQUEST_LINE - len(line))
        answer = exchange(gate, request(padded, "Connection: close"))
        assert answer.status == 200, answer


# The document as served; every check looks at the live answers.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZED = [
    "/debug/pprof/",
    "/debug/pprof/heap",
    "/debug/pprof/allocs",
    "/debug/pprof/goroutine",
    "/debug/pprof/cmdline",
]
LONG_PROFILE_PATHS = [*FUZZED, "/debug/pprof/profile"]


def live_schema(server: Server) -> Any:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


class TestSchemathesisAgainstTheServer:
    @pytest.mark.parametrize("path", LONG_PROFILE_PATHS)
    @pytest.mark.parametrize("length", [LIMIT_REQUEST_LINE - 64, LIMIT_REQUEST_LINE + 1, 9000])
    def test_a_long_url_on_debug_gets_a_documented_answer(
        self, gate: Server, path: str, length: int
    ) -> None:
        operation = live_schema(gate)[path]["GET"]
        case = operation.Case(query={"format": "f" * length})
        with requests.Session() as session:
            response = case.call_and_validate(
                base_url=gate.url, session=session, headers=DEBUG, checks=CHECKS
            )
        # Within the limit the app answers (400 for a bad format, or it ignores the query).
        assert response.status_code in ({414} if length > LIMIT_REQUEST_LINE else {200, 400})

    @pytest.mark.parametrize("path", FUZZED)
    def test_generated_debug_requests_get_documented_answers(self, gate: Server, path: str) -> None:
        operation = live_schema(gate)[path]["GET"]

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def probe(case: Any) -> None:
            with requests.Session() as session:
                case.call_and_validate(
                    base_url=gate.url, session=session, headers=DEBUG, checks=CHECKS, timeout=30
                )

        probe()
