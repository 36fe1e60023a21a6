"""GET /api/buy/<item>: buy one item from the catalogue."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from observability import metrics
from shop.api import context
from shop.api.tokens import current_user_id
from shop.services.purchases import buy_item

bp = Blueprint("purchases", __name__)


@bp.get("/api/buy/<item>")
def buy(item: str) -> Response:
    bought = buy_item(context.uow(), current_user_id(), item)
    metrics.record_purchase(bought.name, bought.price)
    return jsonify({})
