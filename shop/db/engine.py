"""Engine and connection pool: timeouts on every connection, created after gevent patching."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import QueuePool

from observability.compat import PoolQueue, swap_pool_queue
from shop import deadlines
from shop.settings import Settings

# How often a backend checks that its client is still there while it runs a query: a request
# that gave up (deadline) closes its connection, and its query, lock waits included, stops.
CLIENT_CHECK_INTERVAL_MS = 1000


def sqlalchemy_url(database_url: str) -> sa.URL:
    """Point a ``postgresql://`` URL at the psycopg 3 driver."""
    url = make_url(database_url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def session_options(settings: Settings) -> str:
    """Return the server settings each connection starts with (libpq ``options``).

    Reads run outside transactions in read-only mode, so a write that skipped
    ``BEGIN READ WRITE`` fails loudly instead of committing alone (see statements.py).
    """
    settings_ms = {
        "statement_timeout": settings.db_statement_timeout,
        "lock_timeout": settings.db_lock_timeout,
        # A worker frozen inside a transaction must not hold row locks for long.
        "idle_in_transaction_session_timeout": settings.request_timeout * 2,
    }
    options = [f"-c {name}={round(seconds * 1000)}" for name, seconds in settings_ms.items()]
    options.append(f"-c client_connection_check_interval={CLIENT_CHECK_INTERVAL_MS}")
    options.append("-c default_transaction_read_only=on")
    return " ".join(options)


def connect_args(settings: Settings, application_name: str = "shop") -> dict[str, Any]:
    """Return psycopg connection arguments; behind PgBouncer, no options or prepared statements.

    PgBouncer in transaction mode refuses startup options and cannot keep a prepared
    statement across transactions: there the role (or PgBouncer's ``connect_query``)
    carries the timeouts, and psycopg never prepares.
    """
    args: dict[str, Any] = {
        "application_name": application_name,
        "connect_timeout": settings.db_connect_timeout,
    }
    if settings.db_pooler == "pgbouncer":
        args["prepare_threshold"] = None
    else:
        args["options"] = session_options(settings)
    return args


class BudgetedQueue(PoolQueue[Any]):
    """The pool's queue of idle connections; a wait for one ends with the request's budget."""

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        left = deadlines.remaining()
        if block and left is not None:
            timeout = left if timeout is None else min(timeout, left)
        return super().get(block, timeout)


class BudgetedQueuePool(QueuePool):
    """QueuePool that waits at most DB_POOL_TIMEOUT, and never past the request's budget."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Still empty here: nothing is lost by swapping the queue for one that knows budgets.
        swap_pool_queue(self, BudgetedQueue)


def create_db_engine(settings: Settings) -> Engine:
    """Build the pooled engine; one per process, created after gevent patching."""
    settings.require_database()
    return sa.create_engine(
        sqlalchemy_url(settings.database_url),
        poolclass=BudgetedQueuePool,
        pool_size=settings.db_pool_size,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=3600,
        # Transactions are opened explicitly, only by units of work that write
        # (statements.py): a read is one statement and one round trip.
        isolation_level="AUTOCOMMIT",
        # No transaction is open at check-in (units of work end theirs): skip the reset.
        pool_reset_on_return=None,
        # Error messages would otherwise carry bound values such as password hashes into logs.
        hide_parameters=True,
        connect_args=connect_args(settings),
    )
