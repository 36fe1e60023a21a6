"""gunicorn's own refusals made JSON, and the door's prepared 503: each a documented answer.

The worker's ``handle_error`` runs here on a socket pair, with gunicorn's own error classes;
tests/e2e/test_protocol_errors.py sends the malformed requests to a real gunicorn.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from gunicorn import util
from gunicorn.http import errors

from shop.api.openapi import document
from shop.server.protocol_errors import (
    PROTOCOL_STATUSES,
    CapturedAnswer,
    answer,
    linger,
    reason_for,
    status_of,
)
from shop.server.worker import REFUSALS, ShopWorker
from tests.contract import check

SECRET = "s3cr3t-token"


def parsed(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split(" ")[1]), headers, body


def operations() -> list[tuple[str, str]]:
    """Every documented (method, concrete path)."""
    return [
        (method.upper(), template.replace("{item}", "cup"))
        for template, item in document()["paths"].items()
        for method in item
    ]


class FakeLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def warning(self, message: str, *args: Any) -> None:
        self.lines.append(("warning", message % args if args else message))

    def exception(self, message: str, *args: Any) -> None:
        self.lines.append(("exception", message % args if args else message))

    def debug(self, message: str, *args: Any) -> None:
        self.lines.append(("debug", message % args if args else message))


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(the worker's end, the client's end) of a connection; the client has sent all."""
    server, client = socket.socketpair()
    client.shutdown(socket.SHUT_WR)
    yield server, client
    server.close()
    client.close()


def refused_by_worker(exc: BaseException, server: socket.socket, client: socket.socket) -> Any:
    worker = ShopWorker.__new__(ShopWorker)  # handle_error needs only the log without a req
    worker.log = FakeLog()
    worker.handle_error(None, server, ("192.0.2.1", 4242), exc)
    client.settimeout(5)
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return worker.log, parsed(received)


GUNICORN_REFUSALS = [
    pytest.param(errors.InvalidRequestLine(f"GET /{SECRET}"), 400, id="request-line"),
    pytest.param(errors.InvalidRequestMethod(SECRET), 400, id="method"),
    pytest.param(errors.InvalidHTTPVersion((9, 9)), 400, id="version"),
    pytest.param(errors.InvalidHeader(SECRET), 400, id="header"),
    pytest.param(errors.InvalidHeaderName(SECRET), 400, id="header-name"),
    pytest.param(errors.ObsoleteFolding(SECRET), 400, id="folding"),
    pytest.param(errors.LimitRequestLine(9000, 4094), 414, id="line-too-long"),
    pytest.param(errors.LimitRequestHeaders("limit request headers fields"), 431, id="fields"),
    pytest.param(errors.ExpectationFailed(SECRET), 417, id="expect"),
    pytest.param(errors.UnsupportedTransferCoding(SECRET), 501, id="transfer-coding"),
    pytest.param(RuntimeError(SECRET), 500, id="fault"),
]


class TestWorkerHandleError:
    @pytest.mark.parametrize(("exc", "status"), GUNICORN_REFUSALS)
    def test_gunicorns_refusal_is_a_json_error_that_echoes_nothing(
        self, pair: tuple[socket.socket, socket.socket], exc: BaseException, status: int
    ) -> None:
        log, (got, headers, body) = refused_by_worker(exc, *pair)
        assert got == status
        assert headers["Content-Type"] == "application/json"
        assert headers["Connection"] == "close"
        assert int(headers["Content-Length"]) == len(body)
        assert set(json.loads(body)) == {"errors"}
        assert SECRET not in body.decode()
        assert log.lines, "gunicorn's own logging is kept"

    def test_a_client_refusal_is_logged_as_gunicorn_logs_it(
        self, pair: tuple[socket.socket, socket.socket]
    ) -> None:
        log, _ = refused_by_worker(errors.LimitRequestLine(9000, 4094), *pair)
        assert log.lines == [
            (
                "warning",
                "Invalid request from ip=192.0.2.1: Request Line is too large (9000 > 4094)",
            )
        ]

    def test_a_fault_is_logged_with_its_traceback_and_answered_without_it(
        self, pair: tuple[socket.socket, socket.socket]
    ) -> None:
        log, (status, _, body) = refused_by_worker(RuntimeError(SECRET), *pair)
        assert [level for level, _ in log.lines] == ["exception"]
        assert (status, json.loads(body)) == (500, {"errors": "internal server error"})


class TestAnswer:
    def test_the_status_line_of_what_gunicorn_writes_is_read_back(self) -> None:
        captured = CapturedAnswer(socket.socket())
        util.write_error(captured, 431, "Request Header Fields Too Large", "<b>x</b>")
        assert status_of(bytes(captured.written)) == 431
        captured.close()

    @pytest.mark.parametrize("written", [b"", b"garbage", b"HTTP/1.1 OK", b"<html>400 x"])
    def test_something_without_a_status_line_has_no_status(self, written: bytes) -> None:
        assert status_of(written) is None

    def test_an_answer_to_head_has_the_length_but_no_body(self) -> None:
        status, headers, body = parsed(answer(400, "bad request", head=True))
        assert (status, body) == (400, b"")
        assert int(headers["Content-Length"]) == len(
            answer(400, "bad request").split(b"\r\n\r\n")[1]
        )

    def test_a_status_gunicorn_may_add_later_still_gets_a_phrase(self) -> None:
        assert reason_for(403, errors.ForbiddenProxyRequest("10.0.0.1")) == "forbidden"
        assert answer(599, "x").startswith(b"HTTP/1.1 599 Error\r\n")

    def test_linger_drains_what_the_client_still_sends_and_returns(self) -> None:
        server, client = socket.socketpair()
        with server, client:
            client.sendall(b"a" * 50_000)
            client.shutdown(socket.SHUT_WR)
            linger(server, seconds=5)
            assert client.recv(1) == b""  # the worker's side is half-closed

    def test_linger_gives_up_on_a_client_that_never_stops(self) -> None:
        server, client = socket.socketpair()
        with server, client:
            linger(server, seconds=0.05)  # the client sends nothing and never closes


class TestEveryAnswerBeforeTheAppIsDocumented:
    @pytest.mark.parametrize(("method", "path"), operations())
    @pytest.mark.parametrize("status", [*PROTOCOL_STATUSES, 500])
    def test_a_protocol_refusal_conforms_on_every_operation(
        self, method: str, path: str, status: int
    ) -> None:
        _, headers, body = parsed(answer(status, "bad request"))
        check(method, path, status, headers, body)

    @pytest.mark.parametrize(
        ("method", "path"), [(m, p) for m, p in operations() if p.startswith("/api/")]
    )
    @pytest.mark.parametrize("close", [False, True])
    def test_the_doors_prepared_503_conforms_on_every_api_operation(
        self, method: str, path: str, close: bool
    ) -> None:
        status, headers, body = parsed(REFUSALS[close, False])
        check(method, path, status, headers, body)
        assert json.loads(body) == {"errors": "server busy, retry shortly"}
