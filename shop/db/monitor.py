"""Readiness and housekeeping, checked in the background on a connection of their own.

``/readyz`` and ``/metrics`` read the cached answer and never wait on the database, so
a stalled PostgreSQL or an exhausted pool cannot make them hang. The same loop purges
expired idempotency keys and stale login counters now and then.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shop.db.engine import sqlalchemy_url
from shop.db.idempotency import PURGE as PURGE_KEYS
from shop.db.logins import PURGE as PURGE_LOGINS
from shop.db.migrate import head_revision
from shop.domain.idempotency import KEY_LIFETIME_SECONDS
from shop.domain.logins import LoginPolicy
from shop.settings import Settings

log = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 1.0
# A check that has not succeeded for this long reports the service not ready.
STALE_AFTER_SECONDS = 3.0
CHECK_TIMEOUT_SECONDS = 1.0
PURGE_EVERY_SECONDS = 600.0
VERSION = "SELECT version_num FROM alembic_version"


class CheckTimeout(Exception):
    """The database did not answer a readiness check in time."""


class DatabaseMonitor:
    """Keep a fresh answer to "is the database reachable and migrated?" for this worker."""

    def __init__(
        self,
        settings: Settings,
        on_result: Callable[[bool], None] | None = None,
        login_policy: LoginPolicy | None = None,
    ) -> None:
        self._engine = _monitor_engine(settings)
        self._on_result = on_result
        self._login_policy = login_policy or LoginPolicy()
        self._head = head_revision()
        self._problem = "no readiness check has finished yet"
        self._checked_at = float("-inf")
        self._next_purge = time.monotonic() + random.uniform(0, PURGE_EVERY_SECONDS)  # noqa: S311
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Check now, then keep checking in a daemon thread (a greenlet under gevent)."""
        self.check()
        self._thread = threading.Thread(target=self._run, name="db-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=CHECK_TIMEOUT_SECONDS * 2)
        self._engine.dispose()

    def problem(self) -> str | None:
        """Return None when ready, else a reason fit for an operator."""
        if time.monotonic() - self._checked_at > STALE_AFTER_SECONDS:
            return f"database unreachable: {self._problem}"
        return None

    def _run(self) -> None:
        while not self._stop.wait(CHECK_EVERY_SECONDS):
            self.check()
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + PURGE_EVERY_SECONDS
                self._purge()

    def check(self) -> None:
        """Run one bounded check and remember its outcome."""
        try:
            version = self._bounded(lambda conn: conn.exec_driver_sql(VERSION).scalar())
        except Exception as error:  # any failure means "not ready"; say which, briefly
            self._problem = _short(error)
            self._report(False)
            return
        if version != self._head:
            self._problem = f"database schema at {version}, code expects {self._head}"
            self._report(False)
            return
        self._checked_at = time.monotonic()
        self._report(True)

    def _report(self, ready: bool) -> None:
        if self._on_result is not None:
            self._on_result(ready and self.problem() is None)

    def _purge(self) -> None:
        def purge(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN READ WRITE")
            conn.exec_driver_sql(PURGE_KEYS.text, {"lifetime": KEY_LIFETIME_SECONDS})
            conn.exec_driver_sql(PURGE_LOGINS.text, {"window": self._login_policy.window})
            conn.exec_driver_sql("COMMIT")

        try:
            self._bounded(purge, timeout=30.0)
        except Exception as error:
            log.warning("housekeeping skipped: %s", _short(error))

    def _bounded(self, work: Callable[[Any], Any], timeout: float = CHECK_TIMEOUT_SECONDS) -> Any:
        """Run ``work`` on the monitor's connection, giving up after ``timeout`` under gevent.

        Without gevent a hung check only delays the next one; readiness still goes stale.
        """
        with _time_limit(timeout), self._engine.connect() as conn:
            try:
                return work(conn)
            except BaseException:
                conn.invalidate()  # never reuse a connection left mid-statement
                raise


def _time_limit(seconds: float) -> Any:
    from gevent import Timeout, monkey

    if monkey.is_module_patched("socket"):
        return Timeout(seconds, CheckTimeout(f"no answer within {seconds:g} s"))
    return contextlib.nullcontext()


def _monitor_engine(settings: Settings) -> Engine:
    # One connection, outside the request pool: readiness keeps working when the pool
    # is exhausted. Short server-side limits; the client-side limit is _time_limit.
    options = "-c statement_timeout=1000 -c lock_timeout=500"
    connect_args: dict[str, Any] = {"application_name": "shop-monitor", "connect_timeout": 2}
    if settings.db_pooler == "pgbouncer":
        connect_args["prepare_threshold"] = None
    else:
        connect_args["options"] = options
    return sa.create_engine(
        sqlalchemy_url(settings.database_url),
        pool_size=1,
        max_overflow=0,
        pool_timeout=CHECK_TIMEOUT_SECONDS,
        pool_pre_ping=False,
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
        connect_args=connect_args,
    )


def _short(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
