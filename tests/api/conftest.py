"""An in-process app on the throwaway database, driven through Flask's test client."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import pytest
from flask import Flask
from flask.testing import FlaskClient

from shop.settings import Settings
from tests.contract import ConformingClient
from tests.factories import random_ip
from tests.helpers import Login, own_app, sign_up


@pytest.fixture(scope="session")
def app(settings: Settings) -> Iterator[Flask]:
    with own_app(settings) as flask_app:
        # Every response a test sees through this app must be one the OpenAPI document allows.
        flask_app.test_client_class = ConformingClient
        yield flask_app


@pytest.fixture
def fresh_app(settings: Settings) -> Iterator[Flask]:
    """An app of its own, for tests that add routes or rewire it."""
    with own_app(settings) as flask_app:
        yield flask_app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A client with an address of its own: login throttling never couples two tests."""
    test_client = app.test_client()
    test_client.environ_base["REMOTE_ADDR"] = random_ip()
    return test_client


@pytest.fixture
def login(client: FlaskClient) -> Login:
    """Sign a fresh user up (a random name unless given) and return them as a ``User``."""
    return partial(sign_up, client)
