"""Reading PostgreSQL's diagnostics off SQLAlchemy's wrapped errors."""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa_exc

from shop.services.unit_of_work import TransientStorageError

# SQLSTATEs that a fresh attempt of the whole transaction may not hit, by reason.
RETRYABLE_SQLSTATES = {
    "40001": "serialization_failure",
    "40P01": "deadlock",
    "55P03": "lock_timeout",
    "57P01": "admin_shutdown",
    "57P02": "crash_shutdown",
    "57P03": "cannot_connect_now",
    "53300": "too_many_connections",
    "25P03": "idle_in_transaction_timeout",
    "08000": "connection_exception",
    "08003": "connection_does_not_exist",
    "08006": "connection_failure",
    "08001": "connection_failure",
}
# Transient, but another attempt would only run out of time again: answer 503 at once.
FINAL_SQLSTATES = {"57014": "statement_timeout"}


def violated(error: psycopg.Error) -> str | None:
    """Return the name of the constraint a statement violated, if PostgreSQL named one."""
    return error.diag.constraint_name


def transient_error(
    error: BaseException, unnamed: str = "connection_lost"
) -> TransientStorageError | None:
    """Translate a database failure that is not the request's fault, or return None.

    Statements and connecting raise psycopg's errors (db/statements.py), the pool
    SQLAlchemy's; ``unnamed`` names a connection failure that carries no SQLSTATE. Anything
    else (a syntax error, a refused write outside a transaction) is a bug and stays a 500.
    """
    if isinstance(error, sa_exc.TimeoutError):  # every connection lent out: saturation
        return TransientStorageError("pool_exhausted", retryable=False)
    if isinstance(error, sa_exc.PendingRollbackError):
        return TransientStorageError("connection_lost")
    if isinstance(error, sa_exc.DBAPIError):  # from the pool: connecting failed
        found = None
        if isinstance(error.orig, psycopg.Error):
            found = _classify(error.orig, unnamed="connection_failure")
        if found is None and error.connection_invalidated:
            found = TransientStorageError("connection_lost")
        return found
    if isinstance(error, psycopg.Error):
        return _classify(error, unnamed)
    return None


def _classify(error: psycopg.Error, unnamed: str) -> TransientStorageError | None:
    sqlstate = error.sqlstate
    if sqlstate in RETRYABLE_SQLSTATES:
        return TransientStorageError(RETRYABLE_SQLSTATES[sqlstate])
    if sqlstate in FINAL_SQLSTATES:
        return TransientStorageError(FINAL_SQLSTATES[sqlstate], retryable=False)
    # Without a SQLSTATE: psycopg could not connect, or the socket broke mid-statement.
    if sqlstate is None and isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return TransientStorageError(unnamed)
    return None


def transient_reason(error: BaseException) -> str | None:
    """Name the transient failure behind ``error``, or None if retrying cannot help."""
    transient = transient_error(error)
    return None if transient is None else transient.reason
