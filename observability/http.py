"""Per-request hooks: RED metrics, the server span and the access log, in one place."""

from __future__ import annotations

import re
import time
from functools import cache
from random import getrandbits
from typing import Any

import structlog
from flask import Flask, Request, Response, current_app, g, has_request_context, request
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from observability import metrics
from observability.compat import current_object
from observability.spans import exception_type
from observability.tracing import tracer

# The server (shop/server/worker.py) puts the ``time.monotonic()`` instant the request
# reached the host under this WSGI environ key; without it a request starts when the app
# sees it.
ARRIVED = "shop.arrived"
# Operational endpoints stay out of RED metrics and traces.
UNOBSERVED_PREFIXES = ("/metrics", "/healthz", "/readyz", "/debug")
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "<unmatched>"
REQUEST_ID = re.compile(r"[\w.-]{1,64}")


def route_of(req: Request | None = None) -> str:
    """Return the URL rule (``/api/buy/<item>``), never the raw path, so labels stay few."""
    rule = (req or request).url_rule
    return rule.rule if rule is not None else UNMATCHED_ROUTE


def method_of(req: Request | None = None) -> str:
    return method_label((req or request).method)


def method_label(method: str) -> str:
    """Return the method as the metrics label it: known ones as they are, else ``_OTHER``."""
    return method if method in KNOWN_METHODS else "_OTHER"


def _current() -> tuple[Request, Any]:
    """Return this request and its ``g`` themselves: each hook reads them a dozen times, and
    every read through Flask's context proxies costs a lookup."""
    return current_object(request), current_object(g)


def _start() -> None:
    req, state = _current()
    now = time.monotonic()
    state.obs_started = req.environ.get(ARRIVED, now)
    given = req.headers.get("X-Request-Id", "")
    # Not uuid4(): it reads the kernel's random source per request; an id needs no secrecy.
    state.request_id = given if REQUEST_ID.fullmatch(given) else f"{getrandbits(128):032x}"
    structlog.contextvars.bind_contextvars(request_id=state.request_id)
    state.obs_observed = observed = not req.path.startswith(UNOBSERVED_PREFIXES)
    state.obs_span = None
    if not observed:
        return
    metrics.HTTP_ACTIVE.inc()
    state.obs_queued = queued = now - state.obs_started
    _QUEUED_ADMITTED.observe(queued)
    if current_app.extensions["obs_tracing"]:
        _start_span(req, state, queued)


def observe_refused(method: str, route: str, seconds: float) -> None:
    """Record a request the server refused before the app saw it: a 503 in the RED metrics
    and its wait in the queue histogram (its wait is all of its latency, bar the answer)."""
    _duration(method_label(method), route, 503).observe(seconds)
    _QUEUED_REFUSED.observe(seconds)


def _start_span(req: Request, state: Any, queued: float) -> None:
    environ = req.environ
    method = method_of(req)
    rule = req.url_rule
    route = rule.rule if rule is not None else None
    attributes = server_attributes(environ, method, req.path, route)
    if method == "_OTHER":
        attributes["http.request.method_original"] = req.method
    # Parsing headers costs more than the rest of the span: only when a caller sent some.
    parent = propagate.extract(req.headers) if _has_propagation(environ) else None
    attributes[QUEUE_ATTRIBUTE] = queued
    # The span starts when the request reached the host, as the client's clock does.
    span = tracer().start_span(
        span_name(method, route),
        context=parent,
        kind=SpanKind.SERVER,
        attributes=attributes,
        start_time=time.time_ns() - int(queued * 1e9),
    )
    state.obs_span = span
    state.obs_token = context.attach(trace.set_span_in_context(span))


def span_name(method: str, route: str | None) -> str:
    """Name a server span as the HTTP conventions do: ``GET /api/buy/<item>``."""
    if method == "_OTHER":
        method = "HTTP"
    return f"{method} {route}" if route else method


def server_attributes(
    environ: dict[str, Any], method: str, path: str, route: str | None
) -> dict[str, str | int | float]:
    """Return the stable HTTP server attributes known when a request starts."""
    attributes: dict[str, str | int | float] = {
        "http.request.method": method,
        "url.path": path,
        "url.scheme": environ.get("wsgi.url_scheme", "http"),
        "network.protocol.version": environ.get("SERVER_PROTOCOL", "")[5:],
    }
    if route:
        attributes["http.route"] = route
    if agent := environ.get("HTTP_USER_AGENT"):
        attributes["user_agent.original"] = agent
    if client := environ.get("REMOTE_ADDR"):
        attributes["client.address"] = client
    if query := environ.get("QUERY_STRING"):
        attributes["url.query"] = query
    if host := environ.get("HTTP_HOST"):
        name, _, port = host.rpartition(":")
        if name and port.isdigit():
            attributes["server.address"] = name.strip("[]")
            attributes["server.port"] = int(port)
        else:
            attributes["server.address"] = host
    return attributes


@cache
def _propagation_keys() -> tuple[str, ...]:
    fields = propagate.get_global_textmap().fields
    return tuple("HTTP_" + field.upper().replace("-", "_") for field in fields)


def _has_propagation(environ: dict[str, Any]) -> bool:
    return any(key in environ for key in _propagation_keys())


def record_exception(error: BaseException) -> None:
    """Record ``error`` on this request's server span: an exception event and ``error.type``.

    For the error handlers: call it with the exception behind a 5xx answer (the span's
    status becomes ERROR from the status code). Does nothing outside a traced request.
    """
    span = g.get("obs_span") if has_request_context() else None
    if span is None:
        return
    g.obs_error_type = exception_type(error)
    span.record_exception(error)
    span.set_attribute("error.type", g.obs_error_type)


def _finish(response: Response) -> Response:
    req, state = _current()
    elapsed = time.monotonic() - state.obs_started
    status = response.status_code
    route = route_of(req)
    response.headers["X-Request-Id"] = state.request_id
    fields = {
        "method": req.method,
        "route": route,
        "path": req.path,
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "user_id": getattr(state, "user_id", None),
    }
    access_log = current_app.extensions["obs_access_log"]
    if not state.obs_observed:
        access_log.debug("request", **fields)
        return response
    fields["queue_ms"] = round(state.obs_queued * 1000, 3)
    _duration(method_of(req), route, status).observe(elapsed)
    span = state.obs_span
    if span is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            _mark_failed(span, status)
        span_context = span.get_span_context()
        if span_context.is_valid:
            response.headers["X-Trace-Id"] = format(span_context.trace_id, "032x")
    access_log.info("request", **fields)
    return response


def _mark_failed(span: trace.Span, status: int) -> None:
    """Set what the conventions ask of a 5xx: status ERROR and ``error.type``."""
    error_type = g.get("obs_error_type") or str(status)
    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, error_type))


def _teardown(error: BaseException | None) -> None:
    _, state = _current()
    if getattr(state, "obs_observed", False):
        metrics.HTTP_ACTIVE.dec()
        span = state.obs_span
        if span is not None:
            if error is not None:  # escaped every handler
                record_exception(error)
                _mark_failed(span, 500)
            span.end()
            context.detach(state.obs_token)
    structlog.contextvars.clear_contextvars()


_QUEUED_ADMITTED = metrics.REQUEST_QUEUE.labels("admitted")
_QUEUED_REFUSED = metrics.REQUEST_QUEUE.labels("refused")
# Seconds the request waited before the app started on it (shop_request_queue_seconds).
QUEUE_ATTRIBUTE = "shop.request.queue_duration"


@cache
def _duration(method: str, route: str, status: int) -> Any:
    """Return the latency histogram's child for these labels (looked up once per set)."""
    return metrics.HTTP_DURATION.labels(method, route, str(status))


def init_app(app: Flask, access_log: object, tracing: bool) -> None:
    """Install the hooks; without tracing no span is even started (no cost at all)."""
    app.extensions["obs_access_log"] = access_log
    app.extensions["obs_tracing"] = tracing
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_teardown)
