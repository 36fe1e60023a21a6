"""Log lines, server spans by the HTTP conventions, the trace resource."""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from importlib import metadata

import pytest
from flask import Flask
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import REGISTRY

from observability import http, tracing
from observability.logs import REDACTED, access_logger, add_service, add_trace_ids, redact_secrets
from observability.sampling import TailSampler, TracePolicy
from observability.spans import RecordedSpan
from observability.spans import TracerProvider as LeanTracerProvider

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"


class TestRedaction:
    def test_secret_keys_are_blanked(self) -> None:
        event = {"password": "p", "Authorization": "Bearer x", "token": JWT, "user": "ann"}
        assert redact_secrets(None, "info", event) == {
            "password": REDACTED,
            "Authorization": REDACTED,
            "token": REDACTED,
            "user": "ann",
        }

    def test_tokens_inside_messages_are_scrubbed(self) -> None:
        event = {"event": f"header was Bearer {JWT} and raw {JWT}!"}
        assert redact_secrets(None, "info", event)["event"] == (
            f"header was Bearer {REDACTED} and raw {REDACTED}!"
        )

    def test_ordinary_text_is_untouched(self) -> None:
        event = {"event": "request", "path": "/api/info", "status": 200}
        assert redact_secrets(None, "info", dict(event)) == event


class TestTraceIds:
    def test_ids_of_the_current_span_are_added(self) -> None:
        tracer = TracerProvider().get_tracer("test")
        with tracer.start_as_current_span("s") as span:
            event = add_trace_ids(None, "info", {})
        context = span.get_span_context()
        assert event == {
            "trace_id": format(context.trace_id, "032x"),
            "span_id": format(context.span_id, "016x"),
        }

    def test_nothing_is_added_outside_a_span(self) -> None:
        assert add_trace_ids(None, "info", {}) == {}


class TestServiceFields:
    def test_every_line_names_service_version_and_pid(self) -> None:
        assert add_service(None, "info", {}) == {
            "service": "shop",
            "version": metadata.version("shop"),
            "pid": os.getpid(),
        }

    def test_the_access_line_carries_them_too(self, monkeypatch: pytest.MonkeyPatch) -> None:
        out = io.StringIO()
        monkeypatch.setattr(sys, "stderr", out)
        access_logger("json", "INFO").info("request", status=200)
        line = json.loads(out.getvalue())
        assert (line["service"], line["pid"], line["status"]) == ("shop", os.getpid(), 200)
        assert line["version"] == metadata.version("shop")


class TestResource:
    def test_describes_service_version_process_and_host(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "shop-eu")
        attributes = tracing.build_resource("staging").attributes
        assert attributes["service.name"] == "shop-eu"
        assert attributes["service.version"] == metadata.version("shop")
        assert attributes["process.pid"] == os.getpid()
        assert attributes["host.name"] == socket.gethostname()
        assert attributes["deployment.environment.name"] == "staging"

    def test_otel_resource_attributes_win(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(
            "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=prod,service.version=9"
        )
        attributes = tracing.build_resource("staging").attributes
        assert attributes["deployment.environment.name"] == "prod"
        assert attributes["service.version"] == "9"


class SpanList:
    def __init__(self) -> None:
        self.spans: list[RecordedSpan] = []

    def submit(self, spans: Sequence[RecordedSpan]) -> None:
        self.spans.extend(spans)

    def server_span(self) -> RecordedSpan:
        (span,) = [s for s in self.spans if s.kind is SpanKind.SERVER]
        return span


class Boom(Exception):
    """An error the app's handler answers with 500."""


@pytest.fixture
def traced_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Flask, SpanList]]:
    """An app with the real hooks, every trace kept into a list instead of exported."""
    exported = SpanList()
    lean = LeanTracerProvider(TailSampler(exported, TracePolicy(slow_ms=0, sample_ratio=1)))
    monkeypatch.setattr(tracing, "_tracer", lean.get_tracer("shop"))
    app = Flask(__name__)
    http.init_app(app, access_logger("json", "CRITICAL"), True)

    @app.get("/items/<name>")
    def item(name: str) -> dict[str, str]:
        return {"name": name}

    @app.get("/unavailable")
    def unavailable() -> tuple[str, int]:
        return "later", 503

    @app.get("/boom")
    def boom() -> str:
        raise Boom("no")

    @app.get("/crash")
    def crash() -> str:
        raise ZeroDivisionError("escaped")

    def on_boom(error: Boom) -> tuple[str, int]:
        http.record_exception(error)
        return "internal", 500

    app.register_error_handler(Boom, on_boom)
    yield app, exported


def queued_seconds() -> float:
    found = REGISTRY.get_sample_value("shop_request_queue_seconds_sum", {"outcome": "admitted"})
    return found or 0.0


class TestServerSpans:
    def test_follow_the_stable_http_conventions(self, traced_app: tuple[Flask, SpanList]) -> None:
        app, exported = traced_app
        headers = {"User-Agent": "probe/1", "Host": "shop.example:8443"}
        reply = app.test_client().get("/items/cup?size=xl", headers=headers)
        span = exported.server_span()
        assert (span.name, span.kind, span.parent) == ("GET /items/<name>", SpanKind.SERVER, None)
        assert span.attributes is not None
        attributes = dict(span.attributes)
        queued = attributes.pop(http.QUEUE_ATTRIBUTE)
        assert isinstance(queued, float) and 0 <= queued < 0.1  # no server: no time queued
        assert attributes == {
            "http.request.method": "GET",
            "http.route": "/items/<name>",
            "url.path": "/items/cup",
            "url.scheme": "http",
            "url.query": "size=xl",
            "network.protocol.version": "1.1",
            "server.address": "shop.example",
            "server.port": 8443,
            "client.address": "127.0.0.1",
            "user_agent.original": "probe/1",
            "http.response.status_code": 200,
        }
        assert span.status.status_code is StatusCode.UNSET
        assert reply.headers["X-Trace-Id"] == format(span.context.trace_id, "032x")

    def test_start_when_the_request_reached_the_host_and_say_how_long_it_queued(
        self, traced_app: tuple[Flask, SpanList]
    ) -> None:
        app, exported = traced_app
        before = queued_seconds()
        arrived = time.monotonic() - 0.25  # as the worker puts it (shop/server/worker.py)
        app.test_client().get("/items/cup", environ_base={http.ARRIVED: arrived})
        span = exported.server_span()
        assert span.start_time is not None and span.end_time is not None
        assert span.end_time - span.start_time >= 0.25e9
        assert span.attributes is not None
        assert span.attributes[http.QUEUE_ATTRIBUTE] == pytest.approx(0.25, abs=0.05)
        assert queued_seconds() - before == pytest.approx(0.25, abs=0.05)

    def test_an_unmatched_path_is_named_by_its_method_alone(
        self, traced_app: tuple[Flask, SpanList]
    ) -> None:
        app, exported = traced_app
        app.test_client().get("/wp-admin")
        span = exported.server_span()
        assert span.name == "GET" and "http.route" not in span.attributes
        assert span.status.status_code is StatusCode.UNSET  # a 404 is the client's error

    def test_an_unknown_method_is_other_with_the_original_kept(
        self, traced_app: tuple[Flask, SpanList]
    ) -> None:
        app, exported = traced_app
        assert app.test_client().open("/items/cup", method="PURGE").status_code == 405
        span = exported.server_span()
        assert span.name == "HTTP"  # no rule matches a method the route does not allow
        assert span.attributes["http.request.method"] == "_OTHER"
        assert span.attributes["http.request.method_original"] == "PURGE"

    def test_a_5xx_answer_fails_the_span_with_its_code_as_error_type(
        self, traced_app: tuple[Flask, SpanList]
    ) -> None:
        app, exported = traced_app
        app.test_client().get("/unavailable")
        span = exported.server_span()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "503"

    def test_record_exception_names_the_type_and_adds_the_event(
        self, traced_app: tuple[Flask, SpanList]
    ) -> None:
        app, exported = traced_app
        assert app.test_client().get("/boom").status_code == 500
        span = exported.server_span()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "tests.unit.test_observability.Boom"
        (event,) = span.events
        assert event.name == "exception" and event.attributes is not None
        assert event.attributes["exception.message"] == "no"

    def test_an_exception_no_handler_caught_is_recorded_at_teardown(
        self, traced_app: tuple[Flask, SpanList]
    ) -> None:
        app, exported = traced_app
        assert app.test_client().get("/crash").status_code == 500
        span = exported.server_span()
        assert span.attributes["error.type"] == "ZeroDivisionError"
        assert [event.name for event in span.events] == ["exception"]

    def test_a_callers_traceparent_is_continued(self, traced_app: tuple[Flask, SpanList]) -> None:
        app, exported = traced_app
        trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        headers = {"traceparent": f"00-{trace_id}-{parent}-00"}
        assert app.test_client().get("/items/x", headers=headers).headers["X-Trace-Id"] == trace_id
        span = exported.server_span()
        assert span.parent is not None and span.parent.is_remote
        assert format(span.parent.span_id, "016x") == parent

    def test_record_exception_outside_a_request_does_nothing(self) -> None:
        http.record_exception(RuntimeError("no request"))


class TestServerAddress:
    @pytest.mark.parametrize(
        ("host", "expected"),
        [
            ("shop.example", {"server.address": "shop.example"}),
            ("shop.example:8080", {"server.address": "shop.example", "server.port": 8080}),
            ("[::1]:8080", {"server.address": "::1", "server.port": 8080}),
        ],
    )
    def test_comes_from_the_host_header(self, host: str, expected: dict[str, object]) -> None:
        attributes = http.server_attributes({"HTTP_HOST": host}, "GET", "/", None)
        assert {k: v for k, v in attributes.items() if k.startswith("server.")} == expected
