"""GET /healthz (process up) and GET /readyz (database reachable and migrated).

Readiness comes from the worker's background database check (db/monitor.py), so both
answer at once whatever the database does.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from shop.api import context
from shop.api.errors import error_response

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response | tuple[Response, int]:
    problem = context.shop().monitor.problem()
    if problem is not None:
        response, status = error_response(problem, 503)
        response.headers["Retry-After"] = "1"
        return response, status
    return jsonify(status="ready")
