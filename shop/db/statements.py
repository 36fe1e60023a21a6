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

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, CursorResult

from shop import deadlines
from shop.services.unit_of_work import TransientStorageError

tracer = trace.get_tracer("shop.db")


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


class AtomicityError(RuntimeError):
    """A unit of work used its connection in a way that could lose atomicity."""


# Called with (outcome, seconds) when a unit's database work ends: outcome is
# "commit", "rollback" or "read_only".
TransactionHook = Callable[[str, float], None]


class Statements:
    """Run one unit of work's SQL on one connection; open the transaction at the first write."""

    def __init__(self, conn: Connection, on_end: TransactionHook | None = None) -> None:
        self._conn = conn
        self._on_end = on_end
        self._in_transaction = False
        self._started: float | None = None

    def run(self, sql: Sql, params: Mapping[str, Any]) -> CursorResult[Any]:
        """Execute ``sql``; a write first opens the unit's transaction."""
        if self._started is None:
            self._started = time.perf_counter()
        if sql.writes and not self._in_transaction:
            self._execute("BEGIN READ WRITE")
            self._in_transaction = True
        span = tracer.start_span(sql.summary, kind=SpanKind.CLIENT, attributes=sql.attributes)
        try:
            return self._execute(sql.text, params)
        except BaseException as error:
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(trace.StatusCode.ERROR)
            raise
        finally:
            span.end()

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
            if not self._conn.invalidated:  # a dead connection: the server rolled back
                self._execute("ROLLBACK")
            self._ended("rollback")
        elif self._started is not None:
            self._ended("read_only")

    def _ended(self, outcome: str) -> None:
        if self._on_end is not None and self._started is not None:
            self._on_end(outcome, time.perf_counter() - self._started)
        self._started = None

    def _execute(self, text: str, params: Mapping[str, Any] | None = None) -> CursorResult[Any]:
        try:
            with client_limit(deadlines.remaining()):
                return self._conn.exec_driver_sql(text, params)
        except sa_exc.DBAPIError:
            raise
        except BaseException as error:
            # Interrupted mid-statement (out of time, a killed greenlet): the protocol
            # state is unknown, so the connection must never go back to the pool. Closing
            # it makes the server stop the statement within client_connection_check_interval.
            self._conn.invalidate()
            if isinstance(error, NoAnswer):
                raise TransientStorageError("deadline", retryable=False) from error
            raise


class NoAnswer(Exception):
    """The database did not answer a statement within the request's budget."""


def client_limit(seconds: float | None) -> AbstractContextManager[object]:
    """Bound the wait for the server's answer under gevent, where a timer can interrupt it.

    Only the network wait inside psycopg runs in this block: gevent's own primitives are
    safe to interrupt there. The server's statement and lock timeouts end slow statements
    first; this covers a server that does not answer at all (frozen, network gone).
    """
    if seconds is None or not _gevent_patched():
        return nullcontext()
    from gevent import Timeout

    timer: AbstractContextManager[object] = Timeout(
        seconds, NoAnswer(f"no answer in {seconds:.3f} s")
    )
    return timer


@cache
def _gevent_patched() -> bool:
    from gevent import monkey

    return bool(monkey.is_module_patched("socket"))
