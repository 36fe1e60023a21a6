"""Apply alembic migrations under an advisory lock, and report whether the schema is current."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"
# Every worker migrates at start; the lock makes the first one do it and the rest wait.
LOCK_KEY = 0x5_0C_0DE


def alembic_config() -> Config:
    """Return an alembic config that needs no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    """Return the newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    """Return the revision the database is at (None before the first migration).

    Read directly: alembic's MigrationContext logs two INFO lines per call, and readiness
    is checked at every scrape.
    """
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    version: str | None = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return version


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision``; safe to call from many processes at once."""
    config = alembic_config()
    # The service's engine is autocommit; migrations need real transactions (DDL included).
    with engine.connect().execution_options(isolation_level="READ COMMITTED") as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
        conn.commit()
        try:
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
            conn.commit()
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            conn.commit()
