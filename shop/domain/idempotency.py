"""Idempotency keys: a client's promise that two requests with one key are one request."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from shop.domain.errors import IdempotencyConflict, ValidationError

MAX_KEY_LENGTH = 255
# How long a key is remembered: a retry within this window gets the first outcome.
KEY_LIFETIME_SECONDS = 24 * 3600
# Stored as the outcome of a request that succeeded; failures store their error's reason.
SUCCEEDED = "ok"


@dataclass(frozen=True, slots=True)
class RequestKey:
    """One user's key, and a fingerprint of the request it was first used for."""

    user_id: int
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Replay:
    """What the first request with a key stored."""

    fingerprint: str
    outcome: str


def request_key(
    user_id: int, key: str | None, operation: str, *request: object
) -> RequestKey | None:
    """Check the header's format and fingerprint the request (None: no key was sent)."""
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all("!" <= char <= "~" for char in key):
        raise ValidationError(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters"
        )
    canonical = json.dumps([operation, *request], ensure_ascii=False, separators=(",", ":"))
    return RequestKey(user_id, key, hashlib.sha256(canonical.encode()).hexdigest())


def check_replay(key: RequestKey, replay: Replay) -> str:
    """Return the stored outcome, or refuse a key reused for another request."""
    if replay.fingerprint != key.fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was already used for a different request")
    return replay.outcome
