"""Failed logins slow down per account, per address and per pair, then answer 429."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from shop.settings import Settings
from tests.factories import PASSWORD, random_ip, random_username
from tests.helpers import own_app

WRONG = "not the password"


@pytest.fixture(scope="module")
def strict_app(settings: Settings) -> Iterator[Flask]:
    """Small allowances, so each scope trips within a few requests."""
    strict = replace(
        settings,
        login_pair_free_failures=3,
        login_account_free_failures=6,
        login_address_free_failures=8,
        login_max_lockout=60,
    )
    with own_app(strict) as app:
        yield app


def log_in(
    client: FlaskClient, name: str, password: str, address: str
) -> tuple[int, dict[str, str]]:
    reply = client.post(
        "/api/auth",
        json={"username": name, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )
    return reply.status_code, dict(reply.headers)


def throttled(scope: str) -> float:
    return REGISTRY.get_sample_value("shop_login_throttled_total", {"scope": scope}) or 0.0


def age_failures(admin_engine: Engine, seconds: int, name: str, address: str) -> None:
    """Move the failures counted for ``name`` and ``address`` (and no other test's) back in
    time, as if ``seconds`` had passed."""
    with admin_engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE login_failures SET last_failure = last_failure - %(s)s * interval '1 second'"
            " WHERE username = %(name)s OR address = %(address)s",
            {"s": seconds, "name": name, "address": address},
        )


class TestPairScope:
    def test_guesses_from_one_address_get_429_with_retry_after(self, strict_app: Flask) -> None:
        client, name, address = strict_app.test_client(), random_username(), random_ip()
        assert log_in(client, name, PASSWORD, address)[0] == 200
        before = throttled("pair")
        assert [log_in(client, name, WRONG, address)[0] for _ in range(3)] == [401] * 3
        status, headers = log_in(client, name, WRONG, address)
        assert status == 429
        assert headers["Retry-After"] == "1"
        assert throttled("pair") == before + 1

    def test_lockouts_double_then_expire(self, strict_app: Flask, admin_engine: Engine) -> None:
        client, name, address = strict_app.test_client(), random_username(), random_ip()
        log_in(client, name, PASSWORD, address)
        for _ in range(3):
            log_in(client, name, WRONG, address)
        age_failures(admin_engine, 2, name, address)  # the 1 s lockout is over
        assert log_in(client, name, WRONG, address)[0] == 401  # the 4th failure: 2 s now
        status, headers = log_in(client, name, PASSWORD, address)
        assert status == 429 and headers["Retry-After"] == "2"
        age_failures(admin_engine, 3, name, address)
        assert log_in(client, name, PASSWORD, address)[0] == 200

    def test_the_right_password_clears_the_pair(self, strict_app: Flask) -> None:
        client, name, address = strict_app.test_client(), random_username(), random_ip()
        log_in(client, name, PASSWORD, address)
        for _ in range(2):
            log_in(client, name, WRONG, address)
        assert log_in(client, name, PASSWORD, address)[0] == 200
        assert [log_in(client, name, WRONG, address)[0] for _ in range(3)] == [401] * 3


class TestAccountScope:
    def test_a_stranger_guessing_from_many_addresses_does_not_lock_out_the_usual_path(
        self, strict_app: Flask
    ) -> None:
        client, name, home = strict_app.test_client(), random_username(), random_ip()
        assert log_in(client, name, PASSWORD, home)[0] == 200  # home becomes a known address
        for _ in range(6):
            assert log_in(client, name, WRONG, random_ip())[0] == 401
        assert log_in(client, name, WRONG, random_ip())[0] == 429  # the account is locked...
        assert log_in(client, name, PASSWORD, random_ip())[0] == 429  # ...for new addresses
        assert log_in(client, name, PASSWORD, home)[0] == 200  # but not from home


class TestAddressScope:
    def test_one_address_guessing_many_accounts_is_throttled(self, strict_app: Flask) -> None:
        client, address = strict_app.test_client(), random_ip()
        names = [random_username() for _ in range(9)]
        for name in names:
            log_in(client, name, PASSWORD, random_ip())
        statuses = [log_in(client, name, WRONG, address)[0] for name in names]
        assert statuses == [401] * 8 + [429]
        assert log_in(client, names[0], PASSWORD, random_ip())[0] == 200
