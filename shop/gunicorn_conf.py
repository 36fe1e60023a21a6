"""gunicorn settings: gevent workers, one per core, balanced with SO_REUSEPORT.

Loaded by file path, so the master never imports the `shop` package: psycopg must be
imported only after gevent has patched each worker (hence also no --preload). The master
does import `observability.logs` (structlog and the standard library only) and
prometheus_client's multiprocess helpers.
"""

import logging
import os
import tempfile
from pathlib import Path

# Must be in the environment before any process imports prometheus_client.
METRICS_DIR = Path(
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="shop-metrics-"))
)

from gunicorn.glogging import Logger  # noqa: E402

from observability.logs import logging_config  # noqa: E402 - needs the variable above


class NoAccessLogLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger without its access log: the app writes a richer one.

    With ``logconfig_dict`` set gunicorn would format an access line for every request
    (4% of a worker's CPU) only for the logging config to drop it.
    """

    def access(self, *args: object, **kwargs: object) -> None:
        return None


bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gevent"
worker_connections = 1000
# Without it one worker accepts most keep-alive connections and sets the tail latency.
reuse_port = True
keepalive = 75
timeout = 30
graceful_timeout = 20
# The app writes its own access log (with route, user and trace ids).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = logging_config(os.environ.get("LOG_FORMAT", "console"), loglevel.upper())
logger_class = NoAccessLogLogger
# The control socket lives at one fixed path per user; several servers would fight over it.
control_socket_disable = True


def on_starting(server: object) -> None:
    """Drop samples a previous run left behind, so counters start from zero."""
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in METRICS_DIR.glob("*.db"):
        stale.unlink()
    logging.captureWarnings(True)


def child_exit(server: object, worker: object) -> None:
    """Forget a dead worker's live gauges; its counters stay in the sum."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined,no-untyped-call]
