"""The framework floor: a bare Flask app on the shop's own gunicorn + gevent settings.

One ``GET /api/info`` answering a fixed wallet of the shop's shape, and ``/readyz``: what a
request costs with no database, no auth, no logging, no metrics and no tracing. The CPU per
request of the shop divided by this one's says what the shop's own code costs.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify

app = Flask(__name__)

WALLET = {
    "coins": 1000,
    "inventory": [{"type": "cup", "quantity": 1}],
    "coinHistory": {"received": [], "sent": [{"toUser": "load-2", "amount": 1}]},
}


@app.get("/api/info")
def info() -> Response:
    return jsonify(WALLET)


@app.get("/readyz")
def ready() -> Response:
    return jsonify(status="ready")
