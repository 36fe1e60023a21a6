"""SQL statements with their names, and the runner that gives each unit of work its transaction.

Atomicity is enforced, not assumed: a statement declared as a write opens a real
transaction (``BEGIN READ WRITE``) that the unit of work commits or rolls back; a read runs
on its own in autocommit, and the connection's ``default_transaction_read_only`` makes
PostgreSQL refuse any write that was not declared as one (SQLSTATE 25006).
Under READ COMMITTED every statement takes a fresh snapshot anyway, so running a read
before the first write outside the transaction changes nothing a unit can observe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import psycopg
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from psycopg import Cursor
from psycopg.rows import namedtuple_row
from sqlalchemy.pool import PoolProxiedConnection

from shop import deadlines
from shop.services.unit_of_work import TransientStorageError


@dataclass(frozen=True, slots=True)
class Sql:
    """One statement: its text, whether it writes, and a low-cardinality summary for spans."""

    summary: str  # "{operation} {tables}", the span name (OTel db.query.summary)
    text: str
    writes: bool
    attributes: Mapping[str, str] = field(init=False)

    def __post_init__(self) -> None:
        operation, _, tables = self.summary.partition(" ")
        attributes = {
            "db.system.name": "postgresql",
            "db.query.summary": self.summary,
            "db.operation.name": operation,
            "db.query.text": " ".join(self.text.split()),
        }
        if tables and " " not in tables:
            attributes["db.collection.name"] = tables
        object.__setattr__(self, "attributes", attributes)


# Called with (outcome, seconds) when a unit's database work ends: outcome is
# "commit", "rollback" or "read_only".
TransactionHook = Callable[[str, float], None]


class Statements:
    """Run one unit of work's SQL on one pooled connection; open the transaction at the first
    write.

    Statements go to psycopg's cursor directly: SQLAlchemy keeps the pool, the engine and
    migrations, but its execution layer cost more CPU than the statement's own round trip
    (ammo/RESULTS.md). So this class does the two things that layer did for us: a
    connection left in an unknown state is invalidated (never returned to the pool), and
    errors keep psycopg's SQLSTATE for db/errors.py to classify.
    """

    def __init__(
        self,
        conn: PoolProxiedConnection,
        on_end: TransactionHook | None = None,
        on_lost: Callable[[], None] | None = None,
        on_broken: Callable[[BaseException], None] | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._conn = conn
        self._tracer = tracer or NO_TRACER
        self._cursor = _cursor_of(conn)
        self._on_end = on_end
        self._on_lost = on_lost
        self._on_broken = on_broken
        self._in_transaction = False
        self._started: float | None = None

    def run(self, sql: Sql, params: Mapping[str, Any]) -> Cursor[Any]:
        """Execute ``sql`` and return the cursor holding its rows; a write first opens the
        unit's transaction."""
        if self._started is None:
            self._started = time.perf_counter()
        if sql.writes and not self._in_transaction:
            self._execute("BEGIN READ WRITE")
            self._in_transaction = True
        span = self._tracer.start_span(sql.summary, kind=SpanKind.CLIENT, attributes=sql.attributes)
        try:
            return self._execute(sql.text, params)
        except BaseException as error:
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(trace.StatusCode.ERROR)
            raise
        finally:
            span.end()

    def first(self, sql: Sql, params: Mapping[str, Any]) -> Any | None:
        """Execute ``sql`` and return its first row (attributes named after the columns)."""
        return self.run(sql, params).fetchone()

    def one(self, sql: Sql, params: Mapping[str, Any]) -> Any:
        """Execute ``sql``, which always returns a row, and return that row."""
        row = self.first(sql, params)
        if row is None:
            raise RuntimeError(f"{sql.summary} returned no row")
        return row

    def commit(self) -> None:
        """Commit the open transaction, if a write opened one."""
        if self._in_transaction:
            self._execute("COMMIT")
            self._in_transaction = False
            self._ended("commit")

    def end(self) -> None:
        """Roll back whatever was not committed; report a read-only unit as such."""
        if self._in_transaction:
            self._in_transaction = False
            if self._conn.is_valid:  # else a dead connection: the server rolled back
                self._execute("ROLLBACK")
            self._ended("rollback")
        elif self._started is not None:
            self._ended("read_only")

    def _ended(self, outcome: str) -> None:
        if self._on_end is not None and self._started is not None:
            self._on_end(outcome, time.perf_counter() - self._started)
        self._started = None

    def _execute(self, text: str, params: Mapping[str, Any] | None = None) -> Cursor[Any]:
        try:
            with client_limit(deadlines.remaining()):
                # BEGIN/COMMIT/ROLLBACK carry no parameters: never worth preparing.
                return self._cursor.execute(text, params, prepare=None if params else False)
        except psycopg.Error as error:
            if self._conn.dbapi_connection is None or self._conn.dbapi_connection.broken:
                self._lost()
                # The server went away (restart, crash): its other pooled connections are
                # as dead as this one, and a retry must not pick them up one by one.
                if self._on_broken is not None:
                    self._on_broken(error)
            raise
        except BaseException as error:
            # Interrupted mid-statement (out of time, a killed greenlet): the protocol state
            # is unknown, so the connection must never go back to the pool. Closing it makes
            # the server stop the statement within client_connection_check_interval.
            self._lost()
            if isinstance(error, NoAnswer):
                raise TransientStorageError("deadline", retryable=False) from error
            raise

    def _lost(self) -> None:
        if self._conn.is_valid:
            self._conn.invalidate()
            if self._on_lost is not None:
                self._on_lost()


def _cursor_of(conn: PoolProxiedConnection) -> Cursor[Any]:
    """Return the connection's cursor, made once per connection (rows as named tuples)."""
    cursor: Cursor[Any] | None = conn.info.get("shop_cursor")
    if cursor is None:
        connection: psycopg.Connection[Any] = conn.dbapi_connection  # type: ignore[assignment]
        cursor = connection.cursor(row_factory=namedtuple_row)
        conn.info["shop_cursor"] = cursor
    return cursor


NO_TRACER = trace.NoOpTracer()


class NoAnswer(Exception):
    """The database did not answer a statement within the request's budget."""

    def __init__(self) -> None:
        super().__init__("the database did not answer within the request's time budget")


def client_limit(seconds: float | None) -> AbstractContextManager[object]:
    """Bound the wait for the server's answer under gevent, where a timer can interrupt it.

    Only the network wait inside psycopg runs in this block: gevent's own primitives are
    safe to interrupt there. The server's statement and lock timeouts end slow statements
    first; this covers a server that does not answer at all (frozen, network gone).
    """
    if seconds is None or not _gevent_patched():
        return nullcontext()
    from gevent import Timeout

    # The class, not an instance: gevent makes one only if the timer fires.
    timer: AbstractContextManager[object] = Timeout(seconds, NoAnswer)
    return timer


@cache
def _gevent_patched() -> bool:
    from gevent import monkey

    return bool(monkey.is_module_patched("socket"))
