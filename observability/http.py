"""Per-request hooks: RED metrics, the server span and the access log, in one place."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from flask import Flask, Response, current_app, g, request
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from observability import metrics
from observability.tracing import tracer

# Operational endpoints stay out of RED metrics and traces.
UNOBSERVED_PREFIXES = ("/metrics", "/healthz", "/readyz", "/debug")
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"
REQUEST_ID = re.compile(r"[\w.-]{1,64}")


def route_of() -> str:
    """Return the URL rule (``/api/buy/<item>``), never the raw path, so labels stay few."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED_ROUTE


def method_of() -> str:
    return request.method if request.method in KNOWN_METHODS else "_OTHER"


def _start() -> None:
    g.obs_started = time.perf_counter()
    given = request.headers.get("X-Request-Id", "")
    g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=g.request_id)
    g.obs_observed = not request.path.startswith(UNOBSERVED_PREFIXES)
    g.obs_span = None
    if not g.obs_observed:
        return
    metrics.HTTP_ACTIVE.inc()
    if current_app.extensions["obs_tracing"]:
        _start_span()


def _start_span() -> None:
    route = route_of()
    span = tracer().start_span(
        f"{method_of()} {route}",
        context=propagate.extract(request.headers),
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": method_of(),
            "http.route": route,
            "url.path": request.path,
            "url.scheme": request.scheme,
            "network.protocol.version": request.environ.get("SERVER_PROTOCOL", "")[5:],
            "user_agent.original": request.user_agent.string,
        },
    )
    g.obs_span = span
    g.obs_token = context.attach(trace.set_span_in_context(span))


def _finish(response: Response) -> Response:
    elapsed = time.perf_counter() - g.obs_started
    status = response.status_code
    route = route_of()
    response.headers["X-Request-Id"] = g.request_id
    fields = {
        "method": request.method,
        "route": route,
        "path": request.path,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "user_id": g.get("user_id"),
    }
    access_log = current_app.extensions["obs_access_log"]
    if not g.obs_observed:
        access_log.debug("request", **fields)
        return response
    metrics.HTTP_DURATION.labels(method_of(), route, str(status)).observe(elapsed)
    span = g.obs_span
    if span is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        if span.get_span_context().is_valid:
            response.headers["X-Trace-Id"] = format(span.get_span_context().trace_id, "032x")
    access_log.info("request", **fields)
    return response


def _teardown(_: BaseException | None) -> None:
    if g.get("obs_observed"):
        metrics.HTTP_ACTIVE.dec()
        if g.obs_span is not None:
            g.obs_span.end()
            context.detach(g.obs_token)
    structlog.contextvars.clear_contextvars()


def init_app(app: Flask, access_log: object, tracing: bool) -> None:
    """Install the hooks; without tracing no span is even started (no cost at all)."""
    app.extensions["obs_access_log"] = access_log
    app.extensions["obs_tracing"] = tracing
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_teardown)
