"""Engine and connection pool, and waiting for the database at start-up."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from tenacity import Retrying, before_sleep_log, stop_after_delay, wait_exponential

from shop.settings import Settings

log = logging.getLogger(__name__)


def sqlalchemy_url(database_url: str) -> sa.URL:
    """Point a ``postgresql://`` URL at the psycopg 3 driver."""
    url = make_url(database_url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def create_db_engine(settings: Settings) -> Engine:
    """Build the pooled engine; one per process, created after gevent patching."""
    return sa.create_engine(
        sqlalchemy_url(settings.database_url),
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=3600,
        # Every use case is one SQL statement, which PostgreSQL runs as its own transaction:
        # autocommit saves the BEGIN and COMMIT round trips (3 -> 1 per request).
        isolation_level="AUTOCOMMIT",
        # In autocommit no transaction can be open at check-in: skip the reset rollback.
        pool_reset_on_return=None,
        # Error messages would otherwise carry bound values such as password hashes into logs.
        hide_parameters=True,
        connect_args={"application_name": "shop", "connect_timeout": 5},
    )


def wait_for_database(engine: Engine, timeout: float) -> None:
    """Block until the database answers ``SELECT 1``, backing off up to ``timeout`` seconds."""
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_exponential(multiplier=0.1, max=5),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )
    for attempt in retrying:
        with attempt, engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
