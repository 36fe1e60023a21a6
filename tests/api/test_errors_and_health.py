"""The JSON error shape on every failure path, and the health endpoints."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from observability import saturation
from shop.domain.errors import TooManyLogins
from shop.services.unit_of_work import TransientStorageError
from shop.settings import Settings
from tests.factories import random_username, scratch_database, upgrade_to
from tests.helpers import error_of, own_app

# Nothing listens on port 1: connections are refused at once.
DEAD_DATABASE = "postgresql://nobody@127.0.0.1:1/none"


class TestErrorShape:
    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("GET", "/nope", 404),
            ("GET", "/api/buy/", 404),
            ("DELETE", "/api/info", 405),
            ("GET", "/api/auth", 405),
            ("PUT", "/api/sendCoin", 405),
        ],
    )
    def test_unknown_routes_and_wrong_methods_answer_json(
        self, client: FlaskClient, method: str, path: str, status: int
    ) -> None:
        reply = client.open(path, method=method)
        assert reply.status_code == status
        assert reply.content_type == "application/json"
        assert error_of(reply)

    def test_an_unexpected_fault_is_500_without_internals(self, fresh_app: Flask) -> None:
        app = fresh_app

        @app.get("/boom")
        def boom() -> str:
            raise RuntimeError("SELECT secret FROM internals")

        reply = app.test_client().get("/boom")
        assert reply.status_code == 500
        assert reply.json == {"errors": "internal server error"}

    def test_a_database_outage_is_503_with_retry_after(self, settings: Settings) -> None:
        retries = "shop_db_retries_total"
        before = REGISTRY.get_sample_value(retries, {"reason": "connection_failure"}) or 0
        with own_app(replace(settings, database_url=DEAD_DATABASE)) as app:
            body = {"username": "a", "password": "p"}
            reply = app.test_client().post("/api/auth", json=body)
        after = REGISTRY.get_sample_value(retries, {"reason": "connection_failure"})
        assert after == before + settings.db_retry_attempts - 1
        assert reply.status_code == 503
        assert reply.headers["Retry-After"] == "1"
        assert "temporarily unavailable" in error_of(reply)

    def test_a_login_storm_beyond_the_hash_queue_is_429_with_retry_after(
        self, settings: Settings
    ) -> None:
        with own_app(settings, hasher=FullHashQueue()) as app:
            body = {"username": random_username(), "password": "p"}
            reply = app.test_client().post("/api/auth", json=body)
        assert reply.status_code == 429
        assert reply.headers["Retry-After"] == "1"
        assert reply.json == {"errors": "too many logins in progress, retry shortly"}


class TestSaturatedPool:
    def test_a_request_finding_every_connection_lent_out_is_busy_not_database_unavailable(
        self, settings: Settings, capsys: pytest.CaptureFixture[str]
    ) -> None:
        refused = "shop_unavailable_responses_total"
        before = REGISTRY.get_sample_value(refused, {"reason": "pool_exhausted"}) or 0
        retried = REGISTRY.get_sample_value("shop_db_retries_total", {"reason": "pool_exhausted"})
        with own_app(replace(settings, db_pool_size=1, db_pool_timeout=0.05)) as app:
            engine = app.extensions["shop"].engine
            body = {"username": random_username(), "password": "p"}
            with engine.connect():  # the pool's only connection is taken
                reply = app.test_client().post("/api/auth", json=body)
        assert reply.status_code == 503
        assert reply.headers["Retry-After"] == "1"
        assert error_of(reply) == "server busy, retry shortly"
        assert REGISTRY.get_sample_value(refused, {"reason": "pool_exhausted"}) == before + 1
        retried_after = REGISTRY.get_sample_value(
            "shop_db_retries_total", {"reason": "pool_exhausted"}
        )
        assert retried_after == retried, "another wait for the pool would only wait again"
        saturation.report()  # or the reporter thread did, within its second
        logged = capsys.readouterr().err  # create_app points the log at this test's stderr
        assert "server saturated" in logged and "pool_exhausted" in logged
        assert "database unavailable" not in logged


class TestDiagnosis:
    @pytest.mark.parametrize(
        ("reason", "logged"),
        [("lock_timeout", "database busy: lock_timeout"),
         ("hot_row", "database busy: hot_row"),
         ("connection_failure", "database unavailable: connection_failure")],
    )  # fmt: skip
    def test_the_log_says_busy_when_postgresql_answered_and_unavailable_when_it_did_not(
        self, settings: Settings, capsys: pytest.CaptureFixture[str], reason: str, logged: str
    ) -> None:
        with own_app(settings) as app:  # built here: its log goes to this test's stderr

            @app.get("/api/fault")
            def fault() -> str:
                raise TransientStorageError(reason, retryable=False)

            reply = app.test_client().get("/api/fault")
        assert reply.status_code == 503
        assert logged in capsys.readouterr().err


class FullHashQueue:
    """A hasher whose queue is always full: the real one's refusal, without the storm
    (tests/unit/test_passwords.py shows the real queue refusing)."""

    def hash(self, password: str) -> str:
        raise TooManyLogins("too many logins in progress, retry shortly")

    def verify(self, password_hash: str, password: str) -> bool:
        raise TooManyLogins("too many logins in progress, retry shortly")

    def needs_rehash(self, password_hash: str) -> bool:
        return False


class TestHealth:
    def test_healthz_is_ok(self, client: FlaskClient) -> None:
        assert client.get("/healthz").json == {"status": "ok"}

    def test_readyz_is_ready_on_a_migrated_database(self, client: FlaskClient) -> None:
        reply = client.get("/readyz")
        assert (reply.status_code, reply.json) == (200, {"status": "ready"})

    def test_readyz_is_503_when_the_database_is_unreachable(self, settings: Settings) -> None:
        with own_app(replace(settings, database_url=DEAD_DATABASE)) as app:
            reply = app.test_client().get("/readyz")
        assert reply.status_code == 503
        assert reply.headers["Retry-After"] == "1"
        assert error_of(reply).startswith("database unreachable: ")

    def test_readyz_is_503_when_the_schema_is_behind(
        self, settings: Settings, admin_engine: Engine
    ) -> None:
        with scratch_database(admin_engine, settings.database_url) as url:
            upgrade_to(url, "0003")
            with own_app(replace(settings, database_url=url)) as app:
                reply = app.test_client().get("/readyz")
        assert reply.status_code == 503
        assert "database schema at 0003, code expects" in error_of(reply)


class TestOpsEndpointsWithoutPool:
    def test_readyz_and_metrics_answer_at_once_with_the_pool_exhausted(
        self, settings: Settings
    ) -> None:
        with own_app(replace(settings, db_pool_size=1, db_pool_timeout=5)) as app:
            engine = app.extensions["shop"].engine
            client = app.test_client()
            with engine.connect():  # the pool's only connection is taken
                started = time.monotonic()
                ready, metrics = client.get("/readyz"), client.get("/metrics")
                elapsed = time.monotonic() - started
        assert (ready.status_code, metrics.status_code) == (200, 200)
        assert elapsed < 1
