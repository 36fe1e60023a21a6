"""GET /healthz (process up) and GET /readyz (database reachable and migrated)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from shop.api import context
from shop.api.errors import error_response
from shop.db.health import schema_status

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response | tuple[Response, int]:
    problem = schema_status(context.shop().engine)
    if problem is not None:
        return error_response(problem, 503)
    return jsonify(status="ready")
