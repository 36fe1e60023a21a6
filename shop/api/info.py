"""GET /api/info: balance, inventory and grouped coin history."""

from __future__ import annotations

from flask import Blueprint, Response

from shop.api import context
from shop.api.tokens import current_user_id
from shop.services.info import get_info

bp = Blueprint("info", __name__)


@bp.get("/api/info")
def show() -> Response:
    # The data layer renders the document (see WalletDocument): passed through as is.
    wallet = get_info(context.uow(), current_user_id())
    return Response(wallet.json, mimetype="application/json")
