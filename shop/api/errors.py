"""Map every failure to a status and the ``{"errors": "..."}`` shape, in one place."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from observability import metrics
from shop.domain import errors as domain
from shop.services.unit_of_work import TransientStorageError

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[domain.ShopError], int] = {
    domain.ValidationError: 400,
    domain.UnknownItem: 400,
    domain.UnknownRecipient: 400,
    domain.SelfTransfer: 400,
    domain.InsufficientFunds: 400,
    domain.InvalidCredentials: 401,
    domain.MissingToken: 401,
    domain.InvalidToken: 401,
    domain.UnknownUser: 401,
    domain.TooManyLogins: 429,
    domain.ServiceUnavailable: 503,
}
# Statuses that tell the client to come back: they carry Retry-After.
RETRY_LATER = frozenset({429, 503})


def error_response(message: str, status: int) -> tuple[Response, int]:
    """Return the one error body every failure uses."""
    return jsonify(errors=message), status


def _shop_error(error: domain.ShopError) -> tuple[Response, int]:
    metrics.record_refusal(error.reason)
    response, status = error_response(error.message, STATUS_BY_ERROR.get(type(error), 400))
    if status in RETRY_LATER:
        response.headers["Retry-After"] = "1"
    return response, status


def _http_error(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    reply = error_response(error.description or error.name, status)
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        reply[0].headers["Allow"] = ", ".join(error.valid_methods)
    return reply


def _unavailable(error: TransientStorageError) -> tuple[Response, int]:
    log.warning("database unavailable after retries: %s", error.reason)
    response, status = error_response("database temporarily unavailable, retry shortly", 503)
    response.headers["Retry-After"] = "1"
    return response, status


def _unexpected(error: Exception) -> tuple[Response, int]:
    log.exception("unhandled error", exc_info=error)
    return error_response("internal server error", 500)


def init_app(app: Flask) -> None:
    """Register the handlers; the most specific class wins in Flask's lookup."""
    app.register_error_handler(domain.ShopError, _shop_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(TransientStorageError, _unavailable)
    app.register_error_handler(Exception, _unexpected)
