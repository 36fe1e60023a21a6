"""POST /api/sendCoin: send coins to a colleague."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from shop import metrics
from shop.api import context, idempotency, schemas
from shop.api.tokens import current_user_id
from shop.services.transfers import send_coins

bp = Blueprint("transfers", __name__)


@bp.post("/api/sendCoin")
def send() -> Response:
    sender_id = current_user_id()
    body = schemas.json_object("toUser", "amount")
    recipient = schemas.string_field(body, "toUser")
    amount = schemas.integer_field(body, "amount")
    replayed = send_coins(context.uow(), sender_id, recipient, amount, idempotency.key())
    metrics.record_transfer(amount, replayed)
    return idempotency.mark(jsonify({}), replayed)
