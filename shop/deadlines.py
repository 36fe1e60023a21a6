"""The time budget of the current request, for every wait below the HTTP layer.

The HTTP layer opens a budget (REQUEST_TIMEOUT) around each view; the pool wait, hot-row
slots, password-hash slots, retries and each statement's client-side limit then wait at
most for what is left of it. Each wait uses its primitive's own timeout: an exception
thrown into arbitrary code from outside (a request-wide gevent.Timeout) corrupted the
standard library's semaphores under gevent. Context variables are greenlet-local under
gevent, so each request sees its own budget.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("shop_deadline", default=None)


class DeadlineExceeded(Exception):
    """The request used up its time budget."""


@contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """Run the block with a budget of ``seconds`` (None: no budget)."""
    with until(None if seconds is None else time.monotonic() + seconds):
        yield


@contextmanager
def until(instant: float | None) -> Iterator[None]:
    """Run the block with a budget that ends at the ``time.monotonic()`` ``instant``."""
    token = _deadline.set(instant)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Return the seconds left of the current budget (never negative), or None."""
    deadline = _deadline.get()
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def deadline() -> float | None:
    """Return the ``time.monotonic()`` instant the current budget ends, or None."""
    return _deadline.get()
