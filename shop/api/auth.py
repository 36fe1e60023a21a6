"""POST /api/auth: log in, or sign up on the first call for a username."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from shop import metrics
from shop.api import context, schemas
from shop.api.tokens import issue_token
from shop.services.auth import authenticate

bp = Blueprint("auth", __name__)


@bp.post("/api/auth")
def login() -> Response:
    body = schemas.json_object("username", "password")
    username = schemas.string_field(body, "username")
    password = schemas.string_field(body, "password")
    # remote_addr is the client's address, or the proxy's (TRUSTED_PROXY_HOPS).
    login = authenticate(context.uow(), context.hasher(), username, password, request.remote_addr)
    if login.created:
        metrics.record_sign_up()
    return jsonify(token=issue_token(login.user_id))
