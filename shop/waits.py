"""Waits that take no CPU from the worker: a request parked behind a bulkhead.

A request waiting for a hot row's slot or for the password hasher holds nothing the event
loop needs, and each of those waits is bounded by its own bulkhead (shop/db/hot_rows.py,
shop/security/passwords.py). The server's admission (shop/server/admission.py) counts the
requests that compete for the worker's CPU, so a parked request steps out of that count
while it waits: forty requests stuck on one locked row must not fill the worker's limit
and starve everyone else. Context variables are greenlet-local under gevent: each request
parks itself only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar

Park = Callable[[], AbstractContextManager[None]]

_park: ContextVar[Park | None] = ContextVar("shop_park", default=None)


@contextmanager
def parked() -> Iterator[None]:
    """Wait in the block as a request that uses no CPU meanwhile."""
    park = _park.get()
    if park is None:
        yield
        return
    with park():
        yield


@contextmanager
def parking(park: Park) -> Iterator[None]:
    """Let the requests served in the block park with ``park`` (the server's side)."""
    token = _park.set(park)
    try:
        yield
    finally:
        _park.reset(token)
