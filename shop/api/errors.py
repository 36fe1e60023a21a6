"""Map every failure to a status and the ``{"errors": "..."}`` shape, in one place."""

from __future__ import annotations

import logging
import math

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, MethodNotAllowed

import observability.http
from observability import metrics, saturation
from shop import metrics as business
from shop.deadlines import DeadlineExceeded
from shop.domain import errors as domain
from shop.services.unit_of_work import TransientStorageError

log = logging.getLogger(__name__)

# Looked up along each error's class hierarchy: a subclass gets its parent's status.
STATUS_BY_ERROR: dict[type[domain.ShopError], int] = {
    domain.ShopError: 400,
    domain.InvalidCredentials: 401,
    domain.MissingToken: 401,
    domain.InvalidToken: 401,
    domain.UnknownUser: 401,
    domain.IdempotencyConflict: 422,
    domain.TooManyLogins: 429,
    domain.LoginThrottled: 429,
}
UNAVAILABLE = "database temporarily unavailable, retry shortly"
# Reasons where PostgreSQL answered, but a row or a statement took too long: it is up.
CONTENTION = frozenset(
    {"lock_timeout", "statement_timeout", "hot_row", "deadlock", "serialization_failure"}
)
# As the server's own refusal at the door (shop/server/worker.py).
BUSY = "server busy, retry shortly"


def status_of(error: domain.ShopError) -> int:
    """Return the status of the nearest class of ``error`` in the table."""
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def error_response(message: str, status: int) -> tuple[Response, int]:
    """Return the one error body every failure uses."""
    return jsonify(errors=message), status


def retry_after(response: Response, seconds: float) -> Response:
    """Tell the client when to come back (whole seconds, at least one)."""
    response.headers["Retry-After"] = str(max(1, math.ceil(seconds)))
    return response


def _shop_error(error: domain.ShopError) -> tuple[Response, int]:
    business.record_refusal(error)
    response, status = error_response(error.message, status_of(error))
    if error.retry_after is not None:
        retry_after(response, error.retry_after)
    if error.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, status


def _http_error(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    reply = error_response(error.description or error.name, status)
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        reply[0].headers["Allow"] = ", ".join(error.valid_methods)
    return reply


def _unavailable(error: TransientStorageError) -> tuple[Response, int]:
    observability.http.record_exception(error)
    if error.reason in saturation.REASONS:  # the pool: logged once a second, not per request
        saturation.refused(error.reason)
        return _busy()
    if error.reason in CONTENTION:
        log.warning("database busy: %s", error.reason)
    else:
        log.warning("database unavailable: %s", error.reason)
    return _service_unavailable(error.reason)


def _deadline(error: DeadlineExceeded) -> tuple[Response, int]:
    log.warning("request deadline exceeded: %s", error)
    observability.http.record_exception(error)
    return _service_unavailable("deadline")


def _service_unavailable(reason: str) -> tuple[Response, int]:
    metrics.record_unavailable(reason)
    response, status = error_response(UNAVAILABLE, 503)
    return retry_after(response, 1), status


def _busy() -> tuple[Response, int]:
    response, status = error_response(BUSY, 503)
    return retry_after(response, 1), status


def _unexpected(error: Exception) -> tuple[Response, int]:
    log.exception("unhandled error", exc_info=error)
    observability.http.record_exception(error)
    return error_response("internal server error", 500)


def init_app(app: Flask) -> None:
    """Register the handlers; the most specific class wins in Flask's lookup."""
    app.register_error_handler(domain.ShopError, _shop_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(TransientStorageError, _unavailable)
    app.register_error_handler(DeadlineExceeded, _deadline)
    app.register_error_handler(Exception, _unexpected)
