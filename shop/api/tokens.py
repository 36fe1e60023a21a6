"""JWT issue and verification (flask-jwt-extended, HS256 pinned, ``sub`` = user id)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, Response, g
from flask_jwt_extended import (
    JWTManager,
    create_access_token,
    get_jwt_identity,
    verify_jwt_in_request,
)

from observability import metrics
from shop.api.errors import error_response
from shop.domain.errors import UnknownUser
from shop.settings import Settings


def configure(app: Flask, settings: Settings) -> None:
    """Put the JWT settings into the Flask config."""
    app.config.update(
        JWT_SECRET_KEY=settings.jwt_secret,
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=settings.jwt_ttl_seconds),
        JWT_ERROR_MESSAGE_KEY="errors",
    )


def _unauthorized(message: str, reason: str = "invalid_token") -> tuple[Response, int]:
    metrics.record_refusal(reason)
    return error_response(message, 401)


def init_app(app: Flask) -> None:
    """Bind flask-jwt-extended and answer every token problem with a JSON 401."""
    jwt = JWTManager(app)

    def missing(reason: str) -> tuple[Response, int]:
        message = "missing or malformed Authorization header (want: Bearer <token>)"
        return _unauthorized(message, "missing_token")

    def invalid(reason: str) -> tuple[Response, int]:
        return _unauthorized("invalid token")

    def expired(header: dict[str, Any], payload: dict[str, Any]) -> tuple[Response, int]:
        return _unauthorized("token has expired")

    def rejected(header: dict[str, Any], payload: dict[str, Any]) -> tuple[Response, int]:
        return _unauthorized("invalid token")

    jwt.unauthorized_loader(missing)
    jwt.invalid_token_loader(invalid)
    jwt.expired_token_loader(expired)
    for loader in (jwt.revoked_token_loader, jwt.needs_fresh_token_loader):
        loader(rejected)
    jwt.token_verification_failed_loader(rejected)


def issue_token(user_id: int) -> str:
    """Return a signed access token whose subject is ``user_id``."""
    g.user_id = user_id  # for the access log
    token: str = create_access_token(identity=str(user_id))
    return token


def current_user_id() -> int:
    """Verify the bearer token of this request and return its user id."""
    verify_jwt_in_request()
    subject = get_jwt_identity()
    if not isinstance(subject, str) or not (subject.isascii() and subject.isdigit()):
        raise UnknownUser("token subject is not a user id")
    user_id = g.user_id = int(subject)
    return user_id
