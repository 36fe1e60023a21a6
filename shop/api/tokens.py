"""JWTs: issued by flask-jwt-extended, verified on the hot path with PyJWT directly.

HS256 is pinned, ``sub`` is the user id. Verification checks exactly what
flask-jwt-extended would (signature, algorithm, ``exp``/``nbf``/``iat``, ``type``), at a
fraction of its cost, and remembers tokens that verified: a bearer token is sent with every
request of a session, and an HMAC check per request was a tenth of the CPU per request.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import lru_cache

import jwt
from flask import Flask, current_app, g, request
from flask_jwt_extended import JWTManager, create_access_token

from shop.domain.errors import InvalidToken, MissingToken, UnknownUser
from shop.settings import Settings

ALGORITHM = "HS256"
# Verified tokens remembered per worker: ~64 K sessions in a few MiB.
VERIFIED_TOKENS = 65_536


def configure(app: Flask, settings: Settings) -> None:
    """Put the JWT settings into the Flask config."""
    app.config.update(
        JWT_SECRET_KEY=settings.jwt_secret,
        JWT_ALGORITHM=ALGORITHM,
        JWT_DECODE_ALGORITHMS=[ALGORITHM],
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=settings.jwt_ttl_seconds),
    )


def init_app(app: Flask) -> None:
    """Bind flask-jwt-extended, which issues the tokens."""
    JWTManager(app)


def issue_token(user_id: int) -> str:
    """Return a signed access token whose subject is ``user_id``."""
    g.user_id = user_id  # for the access log
    token: str = create_access_token(identity=str(user_id))
    return token


def current_user_id() -> int:
    """Verify this request's bearer token and return its user id."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not token:
        raise MissingToken("missing or malformed Authorization header (want: Bearer <token>)")
    user_id, expires_at = verified(token, current_app.config["JWT_SECRET_KEY"])
    if expires_at <= time.time():  # a remembered token may have expired since
        raise InvalidToken("token has expired")
    g.user_id = user_id
    return user_id


@lru_cache(maxsize=VERIFIED_TOKENS)
def verified(token: str, secret: str) -> tuple[int, float]:
    """Return (user id, expiry) of a valid access token; raise for anything else.

    Failures are not cached (lru_cache keeps only returned values).
    """
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("token has expired") from None
    except jwt.InvalidTokenError:
        raise InvalidToken("invalid token") from None
    subject = claims["sub"]
    if claims.get("type") != "access":
        raise InvalidToken("invalid token")
    if not (isinstance(subject, str) and subject.isascii() and subject.isdigit()):
        raise UnknownUser("token subject is not a user id")
    return int(subject), float(claims["exp"])
