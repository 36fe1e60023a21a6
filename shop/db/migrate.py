"""Apply alembic migrations under an advisory lock; wait for the database first."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from shop.db.engine import sqlalchemy_url

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
# Two instances starting at once: the first migrates, the other waits and finds nothing to do.
LOCK_KEY = 0x5_0C_0DE


class DatabaseUnreachable(RuntimeError):
    """The database did not answer within the start-up timeout."""


def alembic_config() -> Config:
    """Return an alembic config that needs no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    """Return the newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def migration_engine(database_url: str, connect_timeout: int = 2) -> Engine:
    """Return a short-lived engine for start-up work (no pool, no session limits)."""
    return sa.create_engine(
        sqlalchemy_url(database_url),
        poolclass=sa.NullPool,
        hide_parameters=True,
        connect_args={"application_name": "shop-migrate", "connect_timeout": connect_timeout},
    )


def wait_for_database(engine: Engine, timeout: float) -> None:
    """Return once the database answers ``SELECT 1``; after ``timeout`` seconds, give up.

    Each failed try logs one short line (no traceback): an operator watching a start
    wants to see what is wrong, not 4 tracebacks per attempt.
    """
    deadline = time.monotonic() + timeout
    pause = 0.1
    while True:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return
        except sa.exc.DBAPIError as error:
            reason = _first_line(error)
            if time.monotonic() + pause > deadline:
                raise DatabaseUnreachable(
                    f"database not reachable after {timeout:g} s: {reason}"
                ) from None
            log.warning("waiting for the database (%s); retrying in %.1f s", reason, pause)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision``; safe to call from several processes at once."""
    config = alembic_config()
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
        conn.commit()
        try:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            conn.commit()
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            conn.commit()


def prepare_database(database_url: str, timeout: float, connect_timeout: int = 2) -> None:
    """Wait for the database, then bring its schema to this code's head revision."""
    engine = migration_engine(database_url, connect_timeout)
    try:
        wait_for_database(engine, timeout)
        upgrade(engine)
    finally:
        engine.dispose()


def _first_line(error: sa.exc.DBAPIError) -> str:
    lines = str(error.orig).strip().splitlines()
    return lines[0] if lines else type(error.orig).__name__
