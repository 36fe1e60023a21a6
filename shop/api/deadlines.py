"""Flask whose API views run within the request's time budget, counted from its arrival."""

from __future__ import annotations

import time

from flask import Flask, request
from flask.typing import ResponseReturnValue

from observability.http import ARRIVED
from shop import deadlines


class ShopFlask(Flask):
    """Flask whose views run within the request's time budget (shop/deadlines.py).

    The budget starts when the request reached the host (the server puts that instant in
    the environ, shop/server/worker.py), not when the view starts: time spent waiting for
    the worker is the client's time too. Requests past the worker's capacity are refused
    before they get here (shop/server/admission.py).
    """

    request_timeout: float | None = None

    def dispatch_request(self) -> ResponseReturnValue:
        if self.request_timeout is None:
            return super().dispatch_request()
        arrived = request.environ.get(ARRIVED) or time.monotonic()
        with deadlines.until(arrived + self.request_timeout):
            return super().dispatch_request()
