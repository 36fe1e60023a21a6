"""An in-process app on the throwaway database, driven through Flask's test client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shop.app import create_app
from shop.settings import Settings
from tests.contract import ConformingClient
from tests.factories import PASSWORD, random_ip, random_username

Login = Callable[..., dict[str, str]]


@pytest.fixture(scope="session")
def app(settings: Settings) -> Iterator[Flask]:
    for flask_app in _app(settings):
        # Every response a test sees through this app must be one the OpenAPI document allows.
        flask_app.test_client_class = ConformingClient
        yield flask_app


@pytest.fixture
def fresh_app(settings: Settings) -> Iterator[Flask]:
    """An app of its own, for tests that add routes or rewire it."""
    yield from _app(settings)


def _app(settings: Settings) -> Iterator[Flask]:
    with own_app(settings) as flask_app:
        yield flask_app


@contextmanager
def own_app(settings: Settings) -> Iterator[Flask]:
    """Build an app of its own from ``settings``; stop its background work afterwards."""
    flask_app = create_app(settings)
    wired = flask_app.extensions["shop"]
    try:
        yield flask_app
    finally:
        wired.monitor.stop()
        wired.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A client with an address of its own: login throttling never couples two tests."""
    test_client = app.test_client()
    test_client.environ_base["REMOTE_ADDR"] = random_ip()
    return test_client


@pytest.fixture
def login(client: FlaskClient) -> Login:
    """Sign a fresh user up and return ``{"name", "token", "auth"}``-style headers."""

    def sign_up(name: str | None = None) -> dict[str, str]:
        username = name or random_username()
        reply = client.post("/api/auth", json={"username": username, "password": PASSWORD})
        assert reply.status_code == 200, reply.json
        token = reply.json["token"]  # type: ignore[index]
        return {"name": username, "Authorization": f"Bearer {token}"}

    return sign_up


def bearer(user: dict[str, str]) -> dict[str, str]:
    return {"Authorization": user["Authorization"]}
