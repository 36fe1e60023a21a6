"""Idempotency-Key on sendCoin and buy: a retried request happens once and gets its first answer."""

from __future__ import annotations

import uuid

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from tests.helpers import Login, User, coins, error_of


def keyed(user: User, key: str) -> dict[str, str]:
    return {**user.headers, "Idempotency-Key": key}


class TestReplays:
    def test_a_repeated_purchase_is_charged_once_and_marked_as_a_replay(
        self, client: FlaskClient, login: Login
    ) -> None:
        user, key = login(), str(uuid.uuid4())
        first = client.get("/api/buy/cup", headers=keyed(user, key))
        again = client.get("/api/buy/cup", headers=keyed(user, key))
        assert (first.status_code, first.json) == (200, {})
        assert (again.status_code, again.json) == (200, {})
        assert "Idempotent-Replayed" not in first.headers
        assert again.headers["Idempotent-Replayed"] == "true"
        assert coins(client, user) == 980

    def test_a_repeated_transfer_moves_coins_once(self, client: FlaskClient, login: Login) -> None:
        alice, bob, key = login(), login(), str(uuid.uuid4())
        body = {"toUser": bob.name, "amount": 50}
        for _ in range(3):
            reply = client.post("/api/sendCoin", json=body, headers=keyed(alice, key))
            assert reply.status_code == 200
        assert (coins(client, alice), coins(client, bob)) == (950, 1050)

    def test_a_refusal_is_replayed_even_after_the_coins_arrive(
        self, client: FlaskClient, login: Login
    ) -> None:
        alice, bob, key = login(), login(), str(uuid.uuid4())
        body = {"toUser": bob.name, "amount": 1500}
        first = client.post("/api/sendCoin", json=body, headers=keyed(alice, key))
        client.post(
            "/api/sendCoin", json={"toUser": alice.name, "amount": 900}, headers=bob.headers
        )
        again = client.post("/api/sendCoin", json=body, headers=keyed(alice, key))
        assert first.status_code == again.status_code == 400
        assert first.json == again.json == {"errors": "not enough coins"}
        assert again.headers["Idempotent-Replayed"] == "true"
        assert coins(client, alice) == 1900

    def test_a_key_belongs_to_one_user(self, client: FlaskClient, login: Login) -> None:
        alice, bob, key = login(), login(), str(uuid.uuid4())
        assert client.get("/api/buy/pen", headers=keyed(alice, key)).status_code == 200
        reply = client.get("/api/buy/pen", headers=keyed(bob, key))
        assert "Idempotent-Replayed" not in reply.headers
        assert (coins(client, alice), coins(client, bob)) == (990, 990)

    def test_an_expired_key_is_a_new_request(
        self, client: FlaskClient, login: Login, admin_engine: Engine
    ) -> None:
        user, key = login(), str(uuid.uuid4())
        client.get("/api/buy/pen", headers=keyed(user, key))
        with admin_engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE idempotency_keys SET created_at = created_at - interval '25 hours'"
                " WHERE key = %(key)s",
                {"key": key},
            )
        reply = client.get("/api/buy/pen", headers=keyed(user, key))
        assert "Idempotent-Replayed" not in reply.headers
        assert coins(client, user) == 980


class TestRefusals:
    @pytest.mark.parametrize(
        ("first", "second"),
        [
            (("GET", "/api/buy/pen", None), ("GET", "/api/buy/cup", None)),
            (("GET", "/api/buy/pen", None), ("POST", "/api/sendCoin", {"amount": 1})),
            (("POST", "/api/sendCoin", {"amount": 1}), ("POST", "/api/sendCoin", {"amount": 2})),
        ],
    )
    def test_a_key_reused_for_another_request_is_422_and_changes_nothing(
        self,
        client: FlaskClient,
        login: Login,
        first: tuple[str, str, dict[str, object] | None],
        second: tuple[str, str, dict[str, object] | None],
    ) -> None:
        user, peer, key = login(), login(), str(uuid.uuid4())

        def send(method: str, path: str, body: dict[str, object] | None) -> tuple[int, object]:
            payload = None if body is None else {"toUser": peer.name, **body}
            reply = client.open(path, method=method, json=payload, headers=keyed(user, key))
            return reply.status_code, reply.json

        assert send(*first)[0] == 200
        spent = 1000 - coins(client, user)
        status, body = send(*second)
        assert status == 422
        assert body == {"errors": "this Idempotency-Key was already used for a different request"}
        assert 1000 - coins(client, user) == spent

    @pytest.mark.parametrize("key", ["", "x" * 256, "two words", "ключ", "tab\there"])
    def test_a_malformed_key_is_400(self, client: FlaskClient, login: Login, key: str) -> None:
        user = login()
        reply = client.get("/api/buy/pen", headers=keyed(user, key))
        assert reply.status_code == 400
        assert "Idempotency-Key must be 1 to 255 visible ASCII characters" in error_of(reply)
        assert coins(client, user) == 1000
