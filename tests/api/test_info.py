"""GET /api/info."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.helpers import Login


class TestInfo:
    def test_a_new_user_has_1000_coins_and_empty_lists(
        self, client: FlaskClient, login: Login
    ) -> None:
        reply = client.get("/api/info", headers=login().headers)
        assert reply.status_code == 200
        assert reply.json == {
            "coins": 1000,
            "inventory": [],
            "coinHistory": {"received": [], "sent": []},
        }

    def test_shows_inventory_and_history_grouped_per_colleague(
        self, client: FlaskClient, login: Login
    ) -> None:
        alice, bob = login(), login()
        for amount in (100, 50):
            client.post(
                "/api/sendCoin",
                json={"toUser": bob.name, "amount": amount},
                headers=alice.headers,
            )
        client.post("/api/sendCoin", json={"toUser": alice.name, "amount": 7}, headers=bob.headers)
        for item in ("cup", "cup", "pen"):
            client.get(f"/api/buy/{item}", headers=alice.headers)

        reply = client.get("/api/info", headers=alice.headers)
        assert reply.json == {
            "coins": 1000 - 150 + 7 - 50,
            "inventory": [{"type": "cup", "quantity": 2}, {"type": "pen", "quantity": 1}],
            "coinHistory": {
                "received": [{"fromUser": bob.name, "amount": 7}],
                "sent": [{"toUser": bob.name, "amount": 150}],
            },
        }
        assert reply.content_type == "application/json"
