"""Wire the service: each worker's app with its observability, and gunicorn's hooks.

gunicorn's master loads this module through shop/gunicorn_conf.py before it forks the
workers, and gevent patches each worker only after that: so at the top it imports only the
standard library, gunicorn, ``shop.settings`` and ``shop.process``. Flask, SQLAlchemy,
psycopg and the metrics load inside ``create_app``, in each worker after patching.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gunicorn.glogging import Logger

from shop.process import pid_alive
from shop.settings import Settings

if TYPE_CHECKING:
    from flask import Flask
    from opentelemetry import trace
    from sqlalchemy.engine import Engine

    from shop.db.unit_of_work import UnitPolicy
    from shop.domain.logins import LoginPolicy
    from shop.security.passwords import Argon2Hasher

METRICS_PREFIX = "shop-metrics-"
# Set by the image's build (a build argument): the source revision it was built from.
BUILD_REVISION_ENV = "SHOP_BUILD_REVISION"
_own_metrics_dir = False


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app for one worker (after gevent patching, if any)."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    from shop.api import context, init_api
    from shop.api.deadlines import ShopFlask
    from shop.db.engine import create_db_engine
    from shop.db.monitor import DatabaseMonitor
    from shop.runtime import check_gevent_compatible_driver

    settings = settings or Settings.from_env()
    settings.require_database()
    check_gevent_compatible_driver()
    app = ShopFlask(__name__, static_folder=None)
    app.request_timeout = settings.request_timeout
    app.config.update(MAX_CONTENT_LENGTH=settings.max_content_length)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if settings.trusted_proxy_hops:
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    engine = create_db_engine(settings)
    install_observability(app, settings, engine)
    policy = unit_policy(app, settings)
    from observability import metrics

    monitor = DatabaseMonitor(settings, metrics.set_ready, policy.login_policy)
    wired = context.Shop(settings, engine, hasher_of(settings), policy, monitor)
    context.init_app(app, wired)
    init_api(app)
    monitor.start()
    return app


def install_observability(app: Flask, settings: Settings, engine: Engine) -> None:
    """Install logs, traces, metrics and /debug, and publish which build this worker runs.

    Before the engine opens its first connection: the database spans and pool metrics
    only see connections made after them.
    """
    from observability import init_observability, metrics
    from observability.service import service_version

    init_observability(app, settings, engine)
    metrics.publish_build_info(service_version(), build_revision())


def build_revision(env: dict[str, str] | None = None) -> str:
    """Return the source revision the image was built from, or ``unknown``."""
    env = dict(os.environ) if env is None else env
    return env.get(BUILD_REVISION_ENV, "").strip() or "unknown"


def unit_policy(app: Flask, settings: Settings) -> UnitPolicy:
    """Return how units of work retry, lock hot rows and report to the metrics and traces."""
    from observability import metrics
    from shop.db.hot_rows import HotRows
    from shop.db.unit_of_work import UnitPolicy

    return UnitPolicy(
        retry_attempts=settings.db_retry_attempts,
        hot_rows=HotRows(settings.hot_row_concurrency),
        login_policy=login_policy_of(settings),
        on_retry=metrics.count_retry,
        on_transaction=metrics.observe_transaction,
        on_pool_wait=metrics.DB_POOL_WAIT.observe,
        on_connection_error=metrics.DB_CONNECTION_ERRORS.inc,
        tracer=db_tracer(app),
    )


def db_tracer(app: Flask) -> trace.Tracer:
    """Return the data layer's tracer: the configured one, or a no-op when tracing is off."""
    from opentelemetry import trace

    if app.extensions.get("obs_tracing"):
        return trace.get_tracer("shop.db")
    return trace.NoOpTracer()


def hasher_of(settings: Settings) -> Argon2Hasher:
    """Return the argon2id hasher the settings describe, offloaded for this runtime."""
    from shop.security.passwords import Argon2Hasher, offload_for_runtime

    return Argon2Hasher(
        time_cost=settings.password_hash_time_cost,
        memory_kib=settings.password_hash_memory_kib,
        offload=offload_for_runtime(
            nice=settings.password_hash_nice, threads=settings.password_hash_concurrency
        ),
        concurrency=settings.password_hash_concurrency,
        queue=settings.password_hash_queue,
    )


def login_policy_of(settings: Settings) -> LoginPolicy:
    """Return the login throttling policy the settings describe."""
    from shop.domain.logins import LoginPolicy

    return LoginPolicy(
        pair_free=settings.login_pair_free_failures,
        account_free=settings.login_account_free_failures,
        address_free=settings.login_address_free_failures,
        max_lockout=settings.login_max_lockout,
    )


def configure_cli_logging(settings: Settings) -> None:
    """Set up logging for the command line (``shop serve``, ``shop migrate``)."""
    from observability.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)


# gunicorn: the master's side.


def use_metrics_dir() -> Path:
    """Point ``PROMETHEUS_MULTIPROC_DIR`` at a directory, making one if the operator did not.

    Must run before any process imports prometheus_client. A directory made here is
    removed at exit (``on_exit``); one named by the operator is only emptied.
    """
    global _own_metrics_dir
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        _own_metrics_dir = True
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
            prefix=f"{METRICS_PREFIX}{os.getpid()}-"
        )
    return metrics_dir()


def metrics_dir() -> Path:
    """Return the directory the workers write their metric samples to."""
    return Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def gunicorn_logging(settings: Settings) -> dict[str, Any]:
    """Return gunicorn's ``logconfig_dict``: its logs in the service's own format."""
    from observability.logs import logging_config

    return logging_config(settings.log_format, settings.log_level)


class NoAccessLogLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger without its access log: the app writes a richer one.

    With ``logconfig_dict`` set gunicorn would format an access line for every request
    only for the logging config to drop it.
    """

    def access(self, *args: object, **kwargs: object) -> None:
        return None


def on_starting(server: object) -> None:
    """Drop samples a previous run left behind, and temp dirs of runs that were killed."""
    directory = metrics_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    _remove_orphaned_metrics_dirs()
    logging.captureWarnings(True)


def on_exit(server: object) -> None:
    """Remove the metrics directory this run made."""
    if _own_metrics_dir:
        shutil.rmtree(metrics_dir(), ignore_errors=True)


def child_exit(server: object, worker: object) -> None:
    """Forget a dead worker's live gauges; its counters stay in the sum."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined,no-untyped-call]


def _remove_orphaned_metrics_dirs() -> None:
    for path in Path(tempfile.gettempdir()).glob(f"{METRICS_PREFIX}*-*"):
        pid = path.name.removeprefix(METRICS_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
