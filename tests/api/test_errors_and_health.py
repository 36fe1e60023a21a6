"""The JSON error shape on every failure path, and the health endpoints."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from shop.api import context
from shop.domain.errors import TooManyLogins
from tests.factories import random_username


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
        assert set(reply.json) == {"errors"}  # type: ignore[arg-type]

    def test_unexpected_fault_is_500_without_internals(self, fresh_app: Flask) -> None:
        app = fresh_app

        @app.get("/boom")
        def boom() -> str:
            raise RuntimeError("SELECT secret FROM internals")

        reply = app.test_client().get("/boom")
        assert reply.status_code == 500
        assert reply.json == {"errors": "internal server error"}

    def test_database_outage_is_503_with_retry_after(self, fresh_app: Flask) -> None:
        app = fresh_app
        wired = app.extensions["shop"]
        dead = sa.create_engine(
            "postgresql+psycopg://x@127.0.0.1:1/x", connect_args={"connect_timeout": 1}
        )
        app.extensions["shop"] = context.Shop(wired.settings, dead, wired.hasher, wired.on_retry)
        retries = "shop_db_retries_total"
        before = REGISTRY.get_sample_value(retries, {"reason": "connection_failure"}) or 0
        try:
            reply = app.test_client().post("/api/auth", json={"username": "a", "password": "p"})
        finally:
            app.extensions["shop"] = wired
        after = REGISTRY.get_sample_value(retries, {"reason": "connection_failure"})
        assert after == before + wired.settings.db_retry_attempts - 1
        assert reply.status_code == 503
        assert reply.headers["Retry-After"] == "1"
        assert "temporarily unavailable" in reply.json["errors"]  # type: ignore[index]

    def test_a_login_storm_beyond_the_hash_queue_is_429_with_retry_after(
        self, fresh_app: Flask
    ) -> None:
        class BusyHasher:
            def hash(self, password: str) -> str:
                raise TooManyLogins("too many logins in progress, retry shortly")

            verify = needs_rehash = hash  # never reached

        wired = fresh_app.extensions["shop"]
        fresh_app.extensions["shop"] = context.Shop(wired.settings, wired.engine, BusyHasher())
        body = {"username": random_username(), "password": "p"}
        reply = fresh_app.test_client().post("/api/auth", json=body)
        assert reply.status_code == 429
        assert reply.headers["Retry-After"] == "1"
        assert reply.json == {"errors": "too many logins in progress, retry shortly"}


class TestHealth:
    def test_healthz_is_ok(self, client: FlaskClient) -> None:
        assert client.get("/healthz").json == {"status": "ok"}

    def test_readyz_is_ready_on_a_migrated_database(self, client: FlaskClient) -> None:
        reply = client.get("/readyz")
        assert (reply.status_code, reply.json) == (200, {"status": "ready"})

    def test_readyz_is_503_when_the_database_is_unreachable(self, app: Flask) -> None:
        wired = app.extensions["shop"]
        dead = sa.create_engine("postgresql+psycopg://x@127.0.0.1:1/x")
        app.extensions["shop"] = context.Shop(wired.settings, dead, wired.hasher)
        try:
            reply = app.test_client().get("/readyz")
        finally:
            app.extensions["shop"] = wired
        assert reply.status_code == 503
        assert reply.json == {"errors": "database unreachable"}

    def test_readyz_is_503_when_the_schema_is_behind(self, app: Flask, engine: Engine) -> None:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
        try:
            reply = app.test_client().get("/readyz")
        finally:
            from shop.db.migrate import head_revision

            with engine.begin() as conn:
                conn.execute(
                    sa.text("UPDATE alembic_version SET version_num = :v"), {"v": head_revision()}
                )
        assert reply.status_code == 503
        assert "schema at 0000" in reply.json["errors"]  # type: ignore[index]
