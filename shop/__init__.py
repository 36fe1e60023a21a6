"""The merch shop service: ``create_app`` wires settings, database, API and observability."""

from __future__ import annotations

from flask import Flask

from observability import init_observability
from observability.metrics import count_retry
from shop.api import context, init_api, tokens
from shop.db.engine import create_db_engine, wait_for_database
from shop.db.migrate import upgrade
from shop.runtime import check_gevent_compatible_driver
from shop.security.passwords import Argon2Hasher, offload_for_runtime
from shop.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app: wait for the database, migrate it, and register the API."""
    settings = settings or Settings.from_env()
    check_gevent_compatible_driver()
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.max_content_length, JSON_SORT_KEYS=False)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    tokens.configure(app, settings)

    engine = create_db_engine(settings)
    init_observability(app, settings, engine)
    wait_for_database(engine, settings.db_startup_timeout)
    upgrade(engine)
    hasher = Argon2Hasher(
        time_cost=settings.password_hash_time_cost,
        memory_kib=settings.password_hash_memory_kib,
        offload=offload_for_runtime(
            nice=settings.password_hash_nice, threads=settings.password_hash_concurrency
        ),
        concurrency=settings.password_hash_concurrency,
        queue=settings.password_hash_queue,
    )
    wired = context.Shop(settings=settings, engine=engine, hasher=hasher, on_retry=count_retry)
    context.init_app(app, wired)
    init_api(app)
    return app
