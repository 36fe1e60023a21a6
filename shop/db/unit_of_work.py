"""The SQL unit of work: one transaction on the request's pooled connection."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import psycopg
from opentelemetry import trace
from sqlalchemy.engine import Engine
from sqlalchemy.pool import PoolProxiedConnection

from shop import deadlines
from shop.db.errors import transient_error
from shop.db.hot_rows import HotRows, HotRowTimeout
from shop.db.idempotency import SqlIdempotencyRepository
from shop.db.logins import SqlLoginRepository
from shop.db.purchases import SqlPurchaseRepository
from shop.db.statements import Statements, TransactionHook
from shop.db.transfers import SqlTransferRepository
from shop.db.users import SqlUserRepository
from shop.domain.logins import LoginPolicy
from shop.services.unit_of_work import TransientStorageError


@dataclass(frozen=True, slots=True)
class UnitPolicy:
    """What every unit of work of one app shares: retries, hooks and the hot-row bulkhead."""

    retry_attempts: int = 3
    hot_rows: HotRows = field(default_factory=lambda: HotRows(per_key=2))
    login_policy: LoginPolicy = field(default_factory=LoginPolicy)
    on_retry: Callable[[str], None] | None = None
    on_transaction: TransactionHook | None = None
    on_pool_wait: Callable[[float], None] | None = None
    on_connection_error: Callable[[], None] | None = None
    # The tracer itself, not the API's proxy: a proxy cost a lookup per span (a request
    # makes three). A no-op tracer when tracing is off.
    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)


class ConnectionScope:
    """Lend one pooled connection for a whole request, taken on first use."""

    def __init__(self, engine: Engine, on_wait: Callable[[float], None] | None = None) -> None:
        self._engine = engine
        self._on_wait = on_wait
        self._conn: PoolProxiedConnection | None = None

    def get(self) -> PoolProxiedConnection:
        if self._conn is None:
            started = time.perf_counter()
            self._conn = self._engine.raw_connection()
            if self._on_wait is not None:
                self._on_wait(time.perf_counter() - started)
        return self._conn

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except Exception:  # a dead connection: drop it rather than fail the response
                conn.invalidate()

    def invalidate_all(self, error: BaseException) -> None:
        """Mark every connection of the pool made before now as dead, as SQLAlchemy's own
        Connection does on a disconnect: each is reopened at its next checkout."""
        if self._conn is not None:
            self._engine.pool._invalidate(self._conn, error)

    def settle(self) -> None:
        """After a failed unit whose rollback went through: a connection the server answered
        (a lock or statement timeout, a serialization failure, a deadlock) is idle and
        healthy, so it goes back to the pool; any other is dropped.

        Reconnecting instead would cost a backend start and authentication per failure,
        and under a locked row a lock timeout comes every DB_LOCK_TIMEOUT per waiting request.
        """
        conn = self._conn
        raw = conn.dbapi_connection if conn is not None and conn.is_valid else None
        if isinstance(raw, psycopg.Connection) and _idle(raw):
            self.release()
        else:
            self.discard()

    def discard(self) -> None:
        """Drop a connection whose state is unknown (never back to the pool as it is)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            if conn.is_valid:
                conn.invalidate()
            conn.close()


class SqlUnitOfWork:
    """One transaction's worth of repositories on the request's connection.

    No span of its own (it cost as much as a statement's): statement spans hang under the
    request's, and a retry adds a ``db.retry`` event to it.

    Reads run as single statements; the first write opens a real transaction, which
    ``commit()`` commits and leaving the block without it rolls back (statements.py).
    After a failure the request gives its connection up: back to the pool if the server left
    it idle, else closed; a retry takes one from the pool again.
    """

    users: SqlUserRepository
    purchases: SqlPurchaseRepository
    transfers: SqlTransferRepository
    idempotency: SqlIdempotencyRepository
    logins: SqlLoginRepository

    def __init__(
        self,
        connections: ConnectionScope,
        policy: UnitPolicy | None = None,
        release_after_each: bool = False,
    ) -> None:
        self._connections = connections
        self._policy = policy or UnitPolicy()
        # Outside a request (scripts, tests) nothing else returns the connection to the pool.
        self._release_after_each = release_after_each
        self._statements: Statements | None = None

    @property
    def retry_attempts(self) -> int:
        return self._policy.retry_attempts

    def __enter__(self) -> Self:
        try:
            conn = self._connections.get()
        except Exception as error:
            if self._policy.on_connection_error is not None and isinstance(error, psycopg.Error):
                self._policy.on_connection_error()
            _raise_transient(error, unnamed="connection_failure")
            raise
        statements = Statements(
            conn,
            self._policy.on_transaction,
            self._policy.on_connection_error,
            self._connections.invalidate_all,
            self._policy.tracer,
        )
        self._statements = statements
        self.users = SqlUserRepository(statements)
        self.purchases = SqlPurchaseRepository(statements)
        self.transfers = SqlTransferRepository(statements)
        self.idempotency = SqlIdempotencyRepository(statements)
        self.logins = SqlLoginRepository(statements, self._policy.login_policy)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        statements, self._statements = self._statements, None
        try:
            if statements is not None:
                statements.end()
        except Exception as cleanup_error:
            # The rollback met a dead connection: the server has rolled back already.
            self._connections.discard()
            if exc is None:
                raise TransientStorageError("connection_lost") from cleanup_error
        else:
            if exc is not None:
                self._connections.settle()
        finally:
            if self._release_after_each:
                self._connections.release()
        if exc is not None:
            _raise_transient(exc)

    def commit(self) -> None:
        if self._statements is None:
            raise RuntimeError("commit() outside of 'with uow:'")
        self._statements.commit()

    def detach(self) -> None:
        """Return the request's connection to the pool; the next unit takes one again."""
        self._connections.release()

    def on_retry(self, reason: str) -> None:
        # Statement spans show each attempt; the event says why another one was made.
        trace.get_current_span().add_event("db.retry", {"db.retry.reason": reason})
        if self._policy.on_retry is not None:
            self._policy.on_retry(reason)

    def remaining(self) -> float | None:
        return deadlines.remaining()

    @contextmanager
    def exclusive(self, *keys: str) -> Iterator[None]:
        try:
            with self._policy.hot_rows.hold(keys, deadlines.deadline()):
                yield
        except HotRowTimeout:
            raise TransientStorageError("hot_row", retryable=False) from None


def _idle(raw: psycopg.Connection[object]) -> bool:
    return not raw.broken and raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def _raise_transient(error: BaseException, unnamed: str = "connection_lost") -> None:
    transient = transient_error(error, unnamed)
    if transient is not None:
        raise transient from error
