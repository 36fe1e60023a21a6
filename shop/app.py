"""``create_app``: wire settings, database, API and observability. Start-up work that must
run once (waiting for the database, migrations) happens before gunicorn, in `shop serve`."""

from __future__ import annotations

from flask import Flask
from opentelemetry import trace
from werkzeug.middleware.proxy_fix import ProxyFix

from observability import init_observability, metrics
from shop.api import context, init_api
from shop.api.deadlines import ShopFlask
from shop.db.engine import create_db_engine
from shop.db.hot_rows import HotRows
from shop.db.monitor import DatabaseMonitor
from shop.db.unit_of_work import UnitPolicy
from shop.domain.logins import LoginPolicy
from shop.runtime import check_gevent_compatible_driver
from shop.security.passwords import Argon2Hasher, offload_for_runtime
from shop.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app for one worker (after gevent patching, if any)."""
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
    init_observability(app, settings, engine)
    login_policy = login_policy_of(settings)
    wired = context.Shop(
        settings=settings,
        engine=engine,
        hasher=hasher_of(settings),
        policy=UnitPolicy(
            retry_attempts=settings.db_retry_attempts,
            hot_rows=HotRows(settings.hot_row_concurrency),
            login_policy=login_policy,
            on_retry=metrics.count_retry,
            on_transaction=metrics.observe_transaction,
            on_pool_wait=metrics.DB_POOL_WAIT.observe,
            on_connection_error=metrics.DB_CONNECTION_ERRORS.inc,
            tracer=db_tracer(app),
        ),
        monitor=DatabaseMonitor(settings, metrics.set_ready, login_policy),
    )
    context.init_app(app, wired)
    init_api(app)
    wired.monitor.start()
    return app


def db_tracer(app: Flask) -> trace.Tracer:
    """Return the data layer's tracer: the configured one, or a no-op when tracing is off."""
    if app.extensions.get("obs_tracing"):
        return trace.get_tracer("shop.db")
    return trace.NoOpTracer()


def hasher_of(settings: Settings) -> Argon2Hasher:
    """Return the argon2id hasher the settings describe, offloaded for this runtime."""
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
    return LoginPolicy(
        pair_free=settings.login_pair_free_failures,
        account_free=settings.login_account_free_failures,
        address_free=settings.login_address_free_failures,
        max_lockout=settings.login_max_lockout,
    )
