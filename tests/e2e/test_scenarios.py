"""The brief's scenarios over HTTP against a real gunicorn + gevent server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.conftest import Server
from tests.factories import random_username

pytestmark = pytest.mark.e2e


def sign_up(server: Server, name: str | None = None, password: str = "pw") -> requests.Session:
    session = requests.Session()
    reply = session.post(
        f"{server.url}/api/auth",
        json={"username": name or random_username(), "password": password},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    session.headers["Authorization"] = f"Bearer {reply.json()['token']}"
    return session


class TestBuyMerchScenario:
    def test_employee_buys_merch_and_sees_it_in_the_inventory(self, server: Server) -> None:
        alice = sign_up(server)
        for item in ("t-shirt", "cup", "cup"):
            assert alice.get(f"{server.url}/api/buy/{item}", timeout=10).status_code == 200
        info = alice.get(f"{server.url}/api/info", timeout=10).json()
        assert info["coins"] == 1000 - 80 - 40
        assert info["inventory"] == [
            {"type": "cup", "quantity": 2},
            {"type": "t-shirt", "quantity": 1},
        ]

    def test_a_purchase_beyond_the_balance_is_refused(self, server: Server) -> None:
        alice = sign_up(server)
        assert alice.get(f"{server.url}/api/buy/pink-hoody", timeout=10).status_code == 200
        assert alice.get(f"{server.url}/api/buy/pink-hoody", timeout=10).status_code == 200
        reply = alice.get(f"{server.url}/api/buy/socks", timeout=10)
        assert reply.status_code == 400 and reply.json()["errors"]


class TestSendCoinsScenario:
    def test_colleagues_thank_each_other_and_see_grouped_history(self, server: Server) -> None:
        bob_name, carol_name = random_username(), random_username()
        alice, bob, carol = sign_up(server), sign_up(server, bob_name), sign_up(server, carol_name)
        for amount in (10, 20):
            reply = alice.post(
                f"{server.url}/api/sendCoin",
                json={"toUser": bob_name, "amount": amount},
                timeout=10,
            )
            assert reply.status_code == 200
        alice.post(
            f"{server.url}/api/sendCoin", json={"toUser": carol_name, "amount": 5}, timeout=10
        )

        info = alice.get(f"{server.url}/api/info", timeout=10).json()
        assert info["coins"] == 965
        assert sorted(info["coinHistory"]["sent"], key=lambda e: e["toUser"]) == sorted(
            [{"toUser": bob_name, "amount": 30}, {"toUser": carol_name, "amount": 5}],
            key=lambda e: e["toUser"],
        )
        assert bob.get(f"{server.url}/api/info", timeout=10).json()["coins"] == 1030
        assert carol.get(f"{server.url}/api/info", timeout=10).json()["coinHistory"]["received"]

    def test_concurrent_opposite_transfers_over_http_never_5xx(self, server: Server) -> None:
        a_name, b_name = random_username(), random_username()
        a, b = sign_up(server, a_name), sign_up(server, b_name)

        def send(i: int) -> int:
            sender, target = (a, b_name) if i % 2 else (b, a_name)
            url = f"{server.url}/api/sendCoin"
            return sender.post(url, json={"toUser": target, "amount": 3}, timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(send, range(200)))
        assert set(statuses) == {200}
        total = sum(s.get(f"{server.url}/api/info", timeout=10).json()["coins"] for s in (a, b))
        assert total == 2000


class TestAuthOverHttp:
    def test_wrong_password_is_401(self, server: Server) -> None:
        name = random_username()
        sign_up(server, name, password="right")
        reply = requests.post(
            f"{server.url}/api/auth", json={"username": name, "password": "wrong"}, timeout=10
        )
        assert reply.status_code == 401 and reply.json()["errors"]

    @pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic dXNlcjpwYXNz"])
    def test_protected_endpoints_need_a_valid_token(
        self, server: Server, header: str | None
    ) -> None:
        headers = {"Authorization": header} if header else {}
        for path in ("/api/info", "/api/buy/pen"):
            reply = requests.get(f"{server.url}{path}", headers=headers, timeout=10)
            assert reply.status_code == 401
            assert reply.headers["Content-Type"] == "application/json"

    def test_a_token_works_on_every_worker(self, server: Server) -> None:
        """Both workers must accept a token issued by either (shared secret)."""
        session = sign_up(server)
        statuses = {
            session.get(f"{server.url}/api/info", timeout=10).status_code for _ in range(20)
        }
        assert statuses == {200}

    def test_concurrent_first_logins_over_http_create_one_user(self, server: Server) -> None:
        name = random_username()

        def login(_: int) -> int:
            body = {"username": name, "password": "same"}
            return requests.post(f"{server.url}/api/auth", json=body, timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(login, range(8))) == {200}
