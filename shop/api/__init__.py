"""HTTP layer: one blueprint per resource; views parse, call one service, shape the reply."""

from __future__ import annotations

from flask import Flask

from shop.api import auth, errors, health, info, openapi, purchases, transfers


def init_api(app: Flask) -> None:
    """Register error mapping and every blueprint on ``app``."""
    errors.init_app(app)
    for module in (auth, info, purchases, transfers, health, openapi):
        app.register_blueprint(module.bp)
