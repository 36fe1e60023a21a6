"""POST /api/sendCoin."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.helpers import Login, User, error_of


def info(client: FlaskClient, user: User) -> Any:
    return client.get("/api/info", headers=user.headers).json


class TestSend:
    def test_sending_moves_coins_from_one_to_the_other(
        self, client: FlaskClient, login: Login
    ) -> None:
        alice, bob = login(), login()
        reply = client.post(
            "/api/sendCoin", json={"toUser": bob.name, "amount": 250}, headers=alice.headers
        )
        assert reply.status_code == 200
        assert info(client, alice)["coins"] == 750
        assert info(client, bob)["coins"] == 1250

    def test_the_whole_balance_can_be_sent(self, client: FlaskClient, login: Login) -> None:
        alice, bob = login(), login()
        body = {"toUser": bob.name, "amount": 1000}
        assert client.post("/api/sendCoin", json=body, headers=alice.headers).status_code == 200
        assert info(client, alice)["coins"] == 0

    @pytest.mark.parametrize(
        ("amount", "message"),
        [
            (0, "at least 1"),
            (-5, "at least 1"),
            (1.5, "must be an integer"),
            (10.0, "must be an integer"),
            ("10", "must be an integer"),
            (True, "must be an integer"),
            (None, "must be an integer"),
            (10**12, "at most"),
        ],
    )
    def test_bad_amounts_are_400(
        self, client: FlaskClient, login: Login, amount: object, message: str
    ) -> None:
        alice, bob = login(), login()
        body = {"toUser": bob.name, "amount": amount}
        reply = client.post("/api/sendCoin", json=body, headers=alice.headers)
        assert reply.status_code == 400
        assert message in error_of(reply)
        assert info(client, alice)["coins"] == 1000

    def test_insufficient_coins_is_400_and_changes_nothing(
        self, client: FlaskClient, login: Login
    ) -> None:
        alice, bob = login(), login()
        body = {"toUser": bob.name, "amount": 1001}
        reply = client.post("/api/sendCoin", json=body, headers=alice.headers)
        assert reply.status_code == 400
        assert "not enough coins" in error_of(reply)
        assert (info(client, alice)["coins"], info(client, bob)["coins"]) == (1000, 1000)

    def test_an_unknown_recipient_is_400_and_is_not_created(
        self, client: FlaskClient, login: Login
    ) -> None:
        alice = login()
        body = {"toUser": "ghost-" + alice.name, "amount": 1}
        reply = client.post("/api/sendCoin", json=body, headers=alice.headers)
        assert reply.status_code == 400
        assert "unknown recipient" in error_of(reply)
        assert info(client, alice)["coins"] == 1000

    def test_sending_to_yourself_is_400(self, client: FlaskClient, login: Login) -> None:
        alice = login()
        body = {"toUser": alice.name, "amount": 1}
        reply = client.post("/api/sendCoin", json=body, headers=alice.headers)
        assert reply.status_code == 400
        assert "yourself" in error_of(reply)

    @pytest.mark.parametrize(
        "body",
        [
            "{",
            "[]",
            '{"toUser": "b"}',
            '{"amount": 1}',
            '{"toUser": 5, "amount": 1}',
            '{"toUser": "", "amount": 1}',
            '{"toUser": "b", "amount": 1, "note": "hi"}',
        ],
    )
    def test_malformed_bodies_are_400(self, client: FlaskClient, login: Login, body: str) -> None:
        reply = client.post(
            "/api/sendCoin", data=body, content_type="application/json", headers=login().headers
        )
        assert reply.status_code == 400
        assert error_of(reply)
