"""Every private or internal name of a third-party library the service relies on, in one place.

Each of these is outside its library's public API and may change in any release without
notice. The code uses them only through this module (the gunicorn worker's hooks are
overridden in shop/server/worker.py, by subclassing), and tests/unit/test_compat.py checks
every entry of ``SEAMS`` (and each helper's behaviour), so an upgrade that moves or changes
one fails there by name instead of in production.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.util._decorator import _agnosticcontextmanager
from prometheus_client import values
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import queue


@dataclass(frozen=True)
class Seam:
    """One private name (dotted within its module), and the parameters we pass, if callable."""

    module: str
    name: str
    why: str
    params: tuple[str, ...] | None = None


SEAMS = (
    Seam(
        "opentelemetry.util._decorator",
        "_agnosticcontextmanager",
        "start_as_current_span is a context manager and a decorator, as the API's own",
        params=("func",),
    ),
    Seam(
        "opentelemetry.context",
        "_SUPPRESS_INSTRUMENTATION_KEY",
        "the export thread's own HTTP calls must not be traced",
    ),
    Seam(
        "prometheus_client.values",
        "MultiProcessValue",
        "multiprocess values that read a cached pid instead of calling getpid per update",
        params=("process_identifier",),
    ),
    Seam("prometheus_client.values", "ValueClass", "the value class new metrics are made with"),
    Seam(
        "sqlalchemy.util.queue",
        "Queue",
        "the pool's queue of idle connections, replaced by one that knows request budgets",
        params=("maxsize", "use_lifo"),
    ),
    Seam(
        "sqlalchemy.util.queue",
        "Queue.get",
        "overridden to end a wait for a connection with the request's budget",
        params=("self", "block", "timeout"),
    ),
    Seam("pgserver._commands", "POSTGRES_BIN_PATH", "pg_ctl of the embedded PostgreSQL"),
    Seam(
        "gunicorn.workers.ggevent",
        "StreamServer",
        "the gevent server class gunicorn's worker builds (replaced by shop/server/worker.py)",
    ),
    # The hooks shop/server/worker.py overrides on gunicorn's gevent worker, and the write it
    # answers protocol errors with: documented nowhere, so held to their signatures here.
    Seam(
        "gunicorn.workers.ggevent",
        "GeventWorker.handle",
        "every accepted connection: its socket is wrapped to carry the kernel's arrival time",
        params=("self", "listener", "client", "addr"),
    ),
    Seam(
        "gunicorn.workers.ggevent",
        "GeventWorker.handle_request",
        "each parsed request: admission and the request's budget start here",
        params=("self", "listener_name", "req", "sock", "addr"),
    ),
    Seam(
        "gunicorn.workers.ggevent",
        "GeventWorker.handle_error",
        "gunicorn's own 400/414/431/... answers, replaced by JSON ones",
        params=("self", "req", "client", "addr", "exc"),
    ),
    Seam(
        "gunicorn.util",
        "write_nonblock",
        "writes those JSON answers as gunicorn writes its own",
        params=("sock", "data"),
    ),
)

agnostic_contextmanager = _agnosticcontextmanager
SUPPRESS_INSTRUMENTATION_KEY: str = _SUPPRESS_INSTRUMENTATION_KEY
# Subclassed for a queue whose waits end with the request's budget (shop/db/engine.py).
PoolQueue = queue.Queue


def swap_pool_queue(pool: QueuePool, make: Callable[[int, bool], queue.Queue[Any]]) -> None:
    """Replace a fresh pool's (still empty) idle-connection queue with ``make(maxsize, lifo)``."""
    current = pool._pool
    if current.qsize():
        raise RuntimeError("swap the pool's queue before it holds any connection")
    pool._pool = make(current.maxsize, current.use_lifo)


def use_multiprocess_values(process_identifier: Callable[[], int]) -> None:
    """Make metrics created from now on write multiprocess files keyed by this pid function."""
    values.ValueClass = values.MultiProcessValue(process_identifier=process_identifier)  # type: ignore[no-untyped-call]


def current_object(proxy: Any) -> Any:
    """Return the object behind a Flask/werkzeug context proxy (``request``, ``g``)."""
    return proxy._get_current_object()


def postgres_bin_path() -> Path:
    """Return the directory of the embedded PostgreSQL's programs (pgserver, optional)."""
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def use_gunicorn_gevent_server(server_class: type) -> None:
    """Make gunicorn's gevent worker build its listeners' servers from ``server_class``
    (a subclass of gevent's StreamServer); its run() looks the name up on the module."""
    from gunicorn.workers import ggevent

    ggevent.StreamServer = server_class
