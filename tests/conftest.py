"""Shared fixtures: a throwaway PostgreSQL per test process, never the service's own.

Under pytest-xdist every worker is a process of its own with a database of its own (an
embedded server, or a database named after the worker on TEST_DATABASE_URL's server), so
workers never see each other's rows, locks or schema changes.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine, make_url

from shop.db.embedded import EmbeddedPostgres
from shop.db.engine import create_db_engine
from shop.db.migrate import migration_engine, prepare_database
from shop.settings import Settings
from tests.factories import HASH_MEMORY_KIB, HASH_TIME_COST
from tests.helpers import shared_tmp_dir, worker_name


def _database_of_this_worker(configured: str) -> str:
    """Return the URL of this worker's own database on the configured server, creating it
    on first use (``<database>_<worker>``); outside xdist, the configured database itself."""
    worker = worker_name()
    if worker == "main":
        return configured
    url = make_url(configured)
    name = f"{url.database}_{worker}"
    admin = migration_engine(configured)
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.exec_driver_sql(
                "SELECT 1 FROM pg_database WHERE datname = %(name)s", {"name": name}
            ).first()
            if exists is None:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session", autouse=True)
def runtime_dir() -> Iterator[Path]:
    """Give pgserver a runtime directory of this process's own for the whole session.

    Without one, the first embedded server of a process points XDG_RUNTIME_DIR into its
    own data directory, and every later server leaves a lock file there after that
    directory was deleted.
    """
    before = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(tempfile.mkdtemp(prefix=f"shop-test-run-{worker_name()}-"))
    os.environ["XDG_RUNTIME_DIR"] = str(path)
    yield path
    if before is None:
        del os.environ["XDG_RUNTIME_DIR"]
    else:
        os.environ["XDG_RUNTIME_DIR"] = before
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """Return this process's database, migrated to head: on TEST_DATABASE_URL's server if
    the user set one, else on an embedded PostgreSQL started for this process."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        url = _database_of_this_worker(configured)
        prepare_database(url, timeout=30)
        yield url
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
        password_hash_time_cost=HASH_TIME_COST,
        password_hash_memory_kib=HASH_MEMORY_KIB,
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
