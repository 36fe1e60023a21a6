"""A time budget per request: past ``REQUEST_TIMEOUT`` the client gets a 503, whatever blocks.

Under gevent the budget is a ``gevent.Timeout`` around the view: it interrupts whatever
the request waits on (the pool, a lock, a stalled server, a retry's back-off, a password
hash queue). A statement it interrupts loses its connection (db/statements.py), which
makes PostgreSQL stop the statement too. Without gevent (in-process tests) only the
retry and hot-row waits honour the deadline.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from flask import Flask, g
from flask.typing import ResponseReturnValue


class DeadlineExceeded(Exception):
    """The request used up its time budget."""


class ShopFlask(Flask):
    """Flask whose views run within the request's time budget."""

    request_timeout: float | None = None

    def dispatch_request(self) -> ResponseReturnValue:
        timeout = self.request_timeout
        g.deadline = None if timeout is None else time.monotonic() + timeout
        with _budget(self.request_timeout):
            return super().dispatch_request()


def _budget(seconds: float | None) -> Any:
    if seconds is None or not _gevent_patched():
        return contextlib.nullcontext()
    from gevent import Timeout

    return Timeout(seconds, DeadlineExceeded(f"request took longer than {seconds:g} s"))


def _gevent_patched() -> bool:
    from gevent import monkey

    return bool(monkey.is_module_patched("socket"))
