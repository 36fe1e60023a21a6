"""An in-process app on the throwaway database, driven through Flask's test client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shop.api import context
from shop.app import create_app
from shop.services.passwords import PasswordHasher
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
def own_app(settings: Settings, hasher: PasswordHasher | None = None) -> Iterator[Flask]:
    """Build an app of a test's own from ``settings`` (and a stand-in ``hasher``, where a
    test needs one the settings cannot describe); stop its background work afterwards."""
    flask_app = create_app(settings)
    wired = flask_app.extensions["shop"]
    if hasher is not None:  # before the app serves anything, as create_app's own wiring is
        context.init_app(flask_app, replace(wired, hasher=hasher))
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
    """Sign a fresh user up and return ``{"name", "Authorization"}``."""

    def sign_up(name: str | None = None) -> dict[str, str]:
        username = name or random_username()
        reply = client.post("/api/auth", json={"username": username, "password": PASSWORD})
        assert reply.status_code == 200, reply.json
        return {"name": username, "Authorization": f"Bearer {body(reply)['token']}"}

    return sign_up


def bearer(user: dict[str, str]) -> dict[str, str]:
    return {"Authorization": user["Authorization"]}


def body(reply: TestResponse) -> dict[str, Any]:
    """Return the reply's JSON object (failing the test if it is anything else)."""
    document = reply.get_json()
    assert isinstance(document, dict), reply.data
    return document


def error_of(reply: TestResponse) -> str:
    """Return the reply's ``errors`` message: every failure body is ``{"errors": "..."}``."""
    document = body(reply)
    assert set(document) == {"errors"} and isinstance(document["errors"], str), document
    return document["errors"]


def coins(client: FlaskClient, user: dict[str, str]) -> int:
    """Return ``user``'s balance as GET /api/info reports it."""
    balance = body(client.get("/api/info", headers=bearer(user)))["coins"]
    assert isinstance(balance, int)
    return balance
