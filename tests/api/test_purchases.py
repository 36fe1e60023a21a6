"""GET /api/buy/<item>."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.helpers import Login, coins, error_of


class TestBuy:
    def test_buying_debits_the_price(self, client: FlaskClient, login: Login) -> None:
        user = login()
        reply = client.get("/api/buy/powerbank", headers=user.headers)
        assert reply.status_code == 200
        assert reply.json == {}
        assert coins(client, user) == 800

    @pytest.mark.parametrize("item", ["car", "Cup", "t shirt", "%20"])
    def test_an_unknown_item_is_400_and_changes_nothing(
        self, client: FlaskClient, login: Login, item: str
    ) -> None:
        user = login()
        reply = client.get(f"/api/buy/{item}", headers=user.headers)
        assert reply.status_code == 400
        assert "unknown item" in error_of(reply)
        assert coins(client, user) == 1000

    def test_insufficient_coins_is_400_and_changes_nothing(
        self, client: FlaskClient, login: Login
    ) -> None:
        user = login()
        assert client.get("/api/buy/pink-hoody", headers=user.headers).status_code == 200
        assert client.get("/api/buy/pink-hoody", headers=user.headers).status_code == 200
        reply = client.get("/api/buy/pen", headers=user.headers)
        assert reply.status_code == 400
        assert "not enough coins" in error_of(reply)
        assert coins(client, user) == 0

    def test_buying_with_post_is_405(self, client: FlaskClient, login: Login) -> None:
        reply = client.post("/api/buy/pen", headers=login().headers)
        assert reply.status_code == 405
        assert reply.headers["Allow"]
