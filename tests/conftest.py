"""Shared fixtures: one throwaway PostgreSQL per test session, never the service's own."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from shop.db.embedded import EmbeddedPostgres
from shop.db.engine import create_db_engine
from shop.db.migrate import upgrade
from shop.settings import Settings

# Cheap argon2id parameters keep hundreds of sign-ups fast; production cost is set by env.
TEST_HASH_TIME_COST = 1
TEST_HASH_MEMORY_KIB = 1024


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Return TEST_DATABASE_URL if the user set one, else start an embedded PostgreSQL."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")), delete_on_stop=True)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """Return a migrated engine configured as the service's, with room for race threads."""
    db_engine = create_db_engine(
        Settings(database_url=database_url, jwt_secret=secrets.token_hex(32), db_pool_size=30)
    )
    upgrade(db_engine)
    yield db_engine
    db_engine.dispose()


@pytest.fixture(scope="session")
def jwt_secret() -> str:
    return secrets.token_hex(32)


@pytest.fixture(scope="session")
def settings(database_url: str, jwt_secret: str, engine: Engine) -> Settings:
    """Return settings for an in-process app on the throwaway database."""
    return Settings(
        database_url=database_url,
        jwt_secret=jwt_secret,
        password_hash_time_cost=TEST_HASH_TIME_COST,
        password_hash_memory_kib=TEST_HASH_MEMORY_KIB,
        db_startup_timeout=10,
    )
