"""Shared fixtures: one throwaway PostgreSQL per test session, never the service's own."""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from shop.db.embedded import EmbeddedPostgres
from shop.db.engine import create_db_engine
from shop.db.migrate import migration_engine, prepare_database
from shop.settings import Settings

# Cheap argon2id parameters keep hundreds of sign-ups fast; production cost is set by env.
TEST_HASH_TIME_COST = 1
TEST_HASH_MEMORY_KIB = 1024


def shared_tmp_dir(prefix: str) -> Path:
    """Make a directory the embedded server's own user can reach, when run as root.

    Not under pytest's tmp_path: every pytest session (and xdist worker) resets
    /tmp/pytest-of-<user> to mode 0700, which locks out a server another session started.
    """
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """Return TEST_DATABASE_URL if the user set one, else start an embedded PostgreSQL;
    either way migrated to head."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        prepare_database(configured, timeout=30)
        yield configured
        return
    data_dir = shared_tmp_dir("shop-test-pg-")
    server = EmbeddedPostgres(data_dir, delete_on_stop=True)
    try:
        url = server.start()
        prepare_database(url, timeout=30)
        yield url
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def jwt_secret() -> str:
    return secrets.token_hex(32)


@pytest.fixture(scope="session")
def settings(database_url: str, jwt_secret: str) -> Settings:
    """Return settings for an in-process app on the throwaway database."""
    return Settings(
        database_url=database_url,
        jwt_secret=jwt_secret,
        password_hash_time_cost=TEST_HASH_TIME_COST,
        password_hash_memory_kib=TEST_HASH_MEMORY_KIB,
        db_startup_timeout=10,
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    """Return an engine configured as the service's, with room for race threads."""
    db_engine = create_db_engine(dataclasses.replace(settings, db_pool_size=30))
    yield db_engine
    db_engine.dispose()


@pytest.fixture(scope="session")
def admin_engine(database_url: str) -> Iterator[Engine]:
    """Return an engine without the service's session limits, for tests that set the scene
    (hold a row lock, kill a backend) behind the service's back."""
    db_engine = migration_engine(database_url)
    yield db_engine
    db_engine.dispose()
