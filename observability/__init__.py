"""Logging, metrics, tracing and profiling for the shop, wired by one call."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy.engine import Engine

    from observability.config import ObservabilitySettings


def init_observability(app: Flask, settings: ObservabilitySettings, engine: Engine) -> None:
    """Set up logs, traces, metrics and /debug for this worker.

    Call before the engine opens its first connection: the psycopg instrumentation
    only sees connections made after it is installed.
    """
    from observability import http, logs, metrics, process, profiling, scrape, tracing

    logs.configure_logging(settings.log_format, settings.log_level)
    traced = tracing.configure_tracing(settings)
    metrics.watch_engine(engine, settings.db_pool_size)
    app.register_blueprint(scrape.bp)
    profiling.init_app(app, settings.debug_token)
    http.init_app(app, logs.access_logger(settings.log_format, settings.log_level), traced)
    process.start_sampling(settings)
