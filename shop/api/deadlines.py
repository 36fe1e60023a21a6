"""Flask whose API views run within the request's time budget and the worker's in-flight limit."""

from __future__ import annotations

from flask import Flask, request
from flask.typing import ResponseReturnValue

from shop import deadlines


class Overloaded(Exception):
    """The worker already serves as many API requests as it may (``MAX_IN_FLIGHT``)."""


class ShopFlask(Flask):
    """Flask whose views run within the request's time budget (shop/deadlines.py).

    The budget bounds every wait, but not the wait for the CPU: when requests arrive faster
    than a worker can serve them, its event loop takes turns among all of them and each one
    ends late, past its budget. So an API request that finds ``max_in_flight`` others in
    the worker is answered 503 at once; the ops endpoints (/healthz, /readyz, /metrics,
    /debug) are never refused.
    """

    request_timeout: float | None = None
    max_in_flight: int | None = None
    in_flight = 0  # API requests this worker is serving (one event loop: no lock needed)

    def dispatch_request(self) -> ResponseReturnValue:
        counted = request.path.startswith("/api/")
        if counted:
            if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
                raise Overloaded(f"{self.in_flight} requests in flight")
            self.in_flight += 1
        try:
            with deadlines.within(self.request_timeout):
                return super().dispatch_request()
        finally:
            if counted:
                self.in_flight -= 1
