"""Flask whose views run within the request's time budget (``REQUEST_TIMEOUT``)."""

from __future__ import annotations

from flask import Flask
from flask.typing import ResponseReturnValue

from shop import deadlines


class ShopFlask(Flask):
    """Flask whose views run within the request's time budget (shop/deadlines.py)."""

    request_timeout: float | None = None

    def dispatch_request(self) -> ResponseReturnValue:
        with deadlines.within(self.request_timeout):
            return super().dispatch_request()
