"""JWTs with PyJWT: HS256 pinned, ``sub`` is the user id, ``type`` is ``access``.

Verification checks the signature, the algorithm, ``exp``/``nbf``/``iat`` and the type,
and remembers tokens that verified: a bearer token is sent with every request of a
session, and an HMAC check per request is a noticeable share of a request's CPU
(ammo/RESULTS.md). Expiry is re-checked on every use of a remembered token.
"""

from __future__ import annotations

import time
import uuid
from functools import lru_cache

import jwt
from flask import g, request

from shop.api import context
from shop.domain.errors import InvalidToken, MissingToken, UnknownUser

ALGORITHM = "HS256"
TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
# Verified tokens remembered per worker: ~64 K sessions in a few MiB.
VERIFIED_TOKENS = 65_536


def issue_token(user_id: int) -> str:
    """Return a signed access token for this request's user."""
    g.user_id = user_id  # for the access log
    settings = context.shop().settings
    return encode_token(user_id, settings.jwt_secret, settings.jwt_ttl_seconds)


def encode_token(user_id: int, secret: str, ttl_seconds: int) -> str:
    """Return a signed access token whose subject is ``user_id`` (also for load tests)."""
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "type": TOKEN_TYPE,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def current_user_id() -> int:
    """Verify this request's bearer token and return its user id."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not token:
        raise MissingToken("missing or malformed Authorization header (want: Bearer <token>)")
    user_id, expires_at = verified(token, context.shop().settings.jwt_secret)
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
    if claims.get("type") != TOKEN_TYPE:
        raise InvalidToken("invalid token")
    if not (isinstance(subject, str) and subject.isascii() and subject.isdigit()):
        raise UnknownUser("token subject is not a user id")
    return int(subject), float(claims["exp"])
