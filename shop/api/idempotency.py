"""The Idempotency-Key request header and the header that marks a replayed answer."""

from __future__ import annotations

from flask import Response, request

REPLAYED = "Idempotent-Replayed"


def key() -> str | None:
    """Return the request's Idempotency-Key, if it sent one (checked by the domain)."""
    return request.headers.get("Idempotency-Key")


def mark(response: Response, replayed: bool) -> Response:
    """Tell the client this answer is the stored outcome of an earlier request."""
    if replayed:
        response.headers[REPLAYED] = "true"
    return response
