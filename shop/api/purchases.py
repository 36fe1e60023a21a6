"""GET /api/buy/<item>: buy one item from the catalogue."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from shop import metrics
from shop.api import context, idempotency
from shop.api.tokens import current_user_id
from shop.services.purchases import buy_item

bp = Blueprint("purchases", __name__)


@bp.get("/api/buy/<item>")
def buy(item: str) -> Response:
    bought = buy_item(context.uow(), current_user_id(), item, idempotency.key())
    metrics.record_purchase(bought.item.name, bought.item.price, bought.replayed)
    return idempotency.mark(jsonify({}), bought.replayed)
