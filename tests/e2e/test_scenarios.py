"""The brief's scenarios over HTTP against a real gunicorn + gevent server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.factories import random_username
from tests.helpers import Server, User, fresh, sign_up

pytestmark = pytest.mark.e2e


def session_of(user: User) -> requests.Session:
    """A keep-alive session that sends ``user``'s token with every request."""
    session = requests.Session()
    session.headers.update(user.headers)
    return session


class TestBuyMerchScenario:
    def test_an_employee_buys_merch_and_sees_it_in_the_inventory(self, server: Server) -> None:
        alice = session_of(sign_up(server.url))
        for item in ("t-shirt", "cup", "cup"):
            assert alice.get(f"{server.url}/api/buy/{item}", timeout=10).status_code == 200
        info = alice.get(f"{server.url}/api/info", timeout=10).json()
        assert info["coins"] == 1000 - 80 - 40
        assert info["inventory"] == [
            {"type": "cup", "quantity": 2},
            {"type": "t-shirt", "quantity": 1},
        ]

    def test_a_purchase_beyond_the_balance_is_refused(self, server: Server) -> None:
        alice = session_of(sign_up(server.url))
        assert alice.get(f"{server.url}/api/buy/pink-hoody", timeout=10).status_code == 200
        assert alice.get(f"{server.url}/api/buy/pink-hoody", timeout=10).status_code == 200
        reply = alice.get(f"{server.url}/api/buy/socks", timeout=10)
        assert reply.status_code == 400 and reply.json()["errors"]


class TestSendCoinsScenario:
    def test_colleagues_thank_each_other_and_see_grouped_history(self, server: Server) -> None:
        alice_user, bob_user, carol_user = (sign_up(server.url) for _ in range(3))
        alice, bob, carol = (session_of(u) for u in (alice_user, bob_user, carol_user))
        for amount in (10, 20):
            body = {"toUser": bob_user.name, "amount": amount}
            assert alice.post(f"{server.url}/api/sendCoin", json=body, timeout=10).ok
        body = {"toUser": carol_user.name, "amount": 5}
        assert alice.post(f"{server.url}/api/sendCoin", json=body, timeout=10).ok

        info = alice.get(f"{server.url}/api/info", timeout=10).json()
        assert info["coins"] == 965
        assert sorted(info["coinHistory"]["sent"], key=lambda entry: str(entry["toUser"])) == [
            {"toUser": name, "amount": amount}
            for name, amount in sorted([(bob_user.name, 30), (carol_user.name, 5)])
        ]
        assert bob.get(f"{server.url}/api/info", timeout=10).json()["coins"] == 1030
        received = carol.get(f"{server.url}/api/info", timeout=10).json()["coinHistory"]
        assert received["received"] == [{"fromUser": alice_user.name, "amount": 5}]

    def test_concurrent_opposite_transfers_over_http_never_answer_5xx(self, server: Server) -> None:
        a_user, b_user = sign_up(server.url), sign_up(server.url)
        a, b = session_of(a_user), session_of(b_user)

        def send(i: int) -> int:
            sender, target = (a, b_user.name) if i % 2 else (b, a_user.name)
            url = f"{server.url}/api/sendCoin"
            return sender.post(url, json={"toUser": target, "amount": 3}, timeout=10).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(send, range(200)))
        assert set(statuses) == {200}
        total = sum(s.get(f"{server.url}/api/info", timeout=10).json()["coins"] for s in (a, b))
        assert total == 2000


class TestAuthOverHttp:
    def test_a_wrong_password_is_401(self, server: Server) -> None:
        user = sign_up(server.url, password="right")
        body = {"username": user.name, "password": "wrong"}
        reply = fresh("POST", f"{server.url}/api/auth", json=body)
        assert reply.status_code == 401 and reply.json()["errors"]

    @pytest.mark.parametrize("header", [None, "Bearer nonsense", "Basic dXNlcjpwYXNz"])
    @pytest.mark.parametrize("path", ["/api/info", "/api/buy/pen"])
    def test_protected_endpoints_answer_401_json_without_a_valid_token(
        self, server: Server, header: str | None, path: str
    ) -> None:
        headers = {"Authorization": header} if header else {}
        reply = fresh("GET", f"{server.url}{path}", headers=headers)
        assert reply.status_code == 401
        assert reply.headers["Content-Type"] == "application/json"

    def test_a_token_works_on_every_worker(self, server: Server) -> None:
        """Both workers must accept a token issued by either (shared secret); a connection
        of its own per request lets the kernel spread them over both."""
        user = sign_up(server.url)
        statuses = {
            fresh("GET", f"{server.url}/api/info", headers=user.headers).status_code
            for _ in range(20)
        }
        assert statuses == {200}

    def test_concurrent_first_logins_over_http_create_one_user(self, server: Server) -> None:
        name = random_username()

        def login(_: int) -> int:
            body = {"username": name, "password": "same"}
            return fresh("POST", f"{server.url}/api/auth", json=body).status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(login, range(8))) == {200}
