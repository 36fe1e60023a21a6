"""GET /api/info: balance, inventory and grouped coin history."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from shop.api import context
from shop.api.tokens import current_user_id
from shop.services.info import get_info

bp = Blueprint("info", __name__)


@bp.get("/api/info")
def show() -> Response:
    wallet = get_info(context.uow(), current_user_id())
    return jsonify(
        coins=wallet.coins,
        inventory=[{"type": h.item, "quantity": h.quantity} for h in wallet.inventory],
        coinHistory={
            "received": [{"fromUser": c.username, "amount": c.amount} for c in wallet.received],
            "sent": [{"toUser": c.username, "amount": c.amount} for c in wallet.sent],
        },
    )
