"""The SQL unit of work: one transaction on the request's pooled connection."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

from opentelemetry import context, trace
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, RootTransaction

from shop.db.purchases import SqlPurchaseRepository
from shop.db.transfers import SqlTransferRepository
from shop.db.users import SqlUserRepository
from shop.services.unit_of_work import TransientStorageError

tracer = trace.get_tracer("shop.db")

# SQLSTATEs worth a fresh attempt of the whole transaction.
TRANSIENT_SQLSTATES = {
    "40001": "serialization_failure",
    "40P01": "deadlock",
    "57P01": "admin_shutdown",
    "57P02": "crash_shutdown",
    "57P03": "cannot_connect_now",
    "08000": "connection_exception",
    "08003": "connection_does_not_exist",
    "08006": "connection_failure",
    "08001": "connection_failure",
}


def transient_reason(error: BaseException) -> str | None:
    """Name the transient failure behind ``error``, or None if retrying cannot help."""
    if isinstance(error, sa_exc.TimeoutError):
        return "pool_timeout"
    if not isinstance(error, sa_exc.DBAPIError):
        return None
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in TRANSIENT_SQLSTATES:
        return TRANSIENT_SQLSTATES[sqlstate]
    if error.connection_invalidated:
        return "connection_lost"
    # psycopg raises OperationalError without a SQLSTATE when it cannot connect at all.
    if isinstance(error, sa_exc.OperationalError) and sqlstate is None:
        return "connection_failure"
    return None


class ConnectionScope:
    """Lend one pooled connection for a whole request, taken on first use."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def get(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()


class SqlUnitOfWork:
    """One transaction's worth of repositories on the request's connection.

    The connection is in autocommit mode and every repository method is a single
    statement, so each unit of work is exactly one PostgreSQL transaction that either
    happens whole or not at all, in one round trip (no BEGIN/COMMIT). A unit that needs
    two statements must not be written on this connection: tests count statements per use case.
    """

    users: SqlUserRepository
    purchases: SqlPurchaseRepository
    transfers: SqlTransferRepository

    def __init__(
        self,
        connections: ConnectionScope,
        retry_attempts: int = 3,
        on_retry: Callable[[str], None] | None = None,
        release_after_each: bool = False,
    ) -> None:
        self._connections = connections
        # Outside a request (scripts, tests) nothing else returns the connection to the pool.
        self._release_after_each = release_after_each
        self._tx: RootTransaction | None = None
        self.retry_attempts = retry_attempts
        self._on_retry = on_retry

    def __enter__(self) -> Self:
        self._span = tracer.start_span("unit_of_work")
        self._span_token = context.attach(trace.set_span_in_context(self._span))
        try:
            conn = self._connections.get()
            self._tx = conn.begin()
        except Exception as error:
            self._end_span(error)
            _raise_transient(error)
            raise
        self.users = SqlUserRepository(conn)
        self.purchases = SqlPurchaseRepository(conn)
        self.transfers = SqlTransferRepository(conn)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tx, self._tx = self._tx, None
        if tx is not None and tx.is_active:
            try:
                tx.rollback()
            except sa_exc.DBAPIError:
                if exc is None:  # otherwise the first failure is the one worth reporting
                    raise
        if self._release_after_each:
            self._connections.release()
        self._end_span(exc)
        if exc is not None:
            _raise_transient(exc)

    def commit(self) -> None:
        if self._tx is None:
            raise RuntimeError("commit() outside of 'with uow:'")
        self._tx.commit()

    def _end_span(self, error: BaseException | None) -> None:
        context.detach(self._span_token)
        if error is not None:
            self._span.record_exception(error)
            self._span.set_status(trace.StatusCode.ERROR)
        self._span.end()

    def detach(self) -> None:
        """Return the request's connection to the pool; the next unit takes one again."""
        self._connections.release()

    def on_retry(self, reason: str) -> None:
        if self._on_retry is not None:
            self._on_retry(reason)


def _raise_transient(error: BaseException) -> None:
    reason = transient_reason(error)
    if reason is not None:
        raise TransientStorageError(reason) from error
