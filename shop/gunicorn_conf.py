"""gunicorn settings, from the one ``Settings``: gevent workers balanced with SO_REUSEPORT.

Loaded by file path, and importing only ``shop.settings``, ``observability.logs`` and
prometheus_client's multiprocess helpers: psycopg must be imported only after gevent has
patched each worker (hence also no --preload).
"""

import logging
import os
import shutil
import tempfile
from pathlib import Path

from shop.process import pid_alive
from shop.settings import Settings

SETTINGS = Settings.from_env()
METRICS_PREFIX = "shop-metrics-"

# Must be in the environment before any process imports prometheus_client. A directory
# made here is removed at exit; one named by the operator is only emptied.
_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(
        prefix=f"{METRICS_PREFIX}{os.getpid()}-"
    )
METRICS_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])

from gunicorn.glogging import Logger  # noqa: E402

from observability.logs import logging_config  # noqa: E402 - needs the variable above


class NoAccessLogLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger without its access log: the app writes a richer one.

    With ``logconfig_dict`` set gunicorn would format an access line for every request
    only for the logging config to drop it.
    """

    def access(self, *args: object, **kwargs: object) -> None:
        return None


bind = f"0.0.0.0:{SETTINGS.port}"
workers = SETTINGS.web_concurrency
worker_class = "shop.server.worker.ShopWorker"
worker_connections = 1000
# Without it one worker accepts most keep-alive connections and sets the tail latency.
reuse_port = True
keepalive = 75
# A worker whose event loop stops answering this long is killed; the request budget
# (REQUEST_TIMEOUT) ends ordinary requests long before.
timeout = max(30, int(SETTINGS.request_timeout * 4))
graceful_timeout = 20
# The app writes its own access log (with route, user and trace ids).
accesslog = None
errorlog = "-"
loglevel = SETTINGS.log_level.lower()
logconfig_dict = logging_config(SETTINGS.log_format, SETTINGS.log_level)
logger_class = NoAccessLogLogger
# The control socket lives at one fixed path per user; several servers would fight over it.
control_socket_disable = True


def on_starting(server: object) -> None:
    """Drop samples a previous run left behind, and temp dirs of runs that were killed."""
    METRICS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in METRICS_DIR.glob("*.db"):
        stale.unlink()
    _remove_orphaned_metrics_dirs()
    logging.captureWarnings(True)


def on_exit(server: object) -> None:
    """Remove the metrics directory this run made."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)


def child_exit(server: object, worker: object) -> None:
    """Forget a dead worker's live gauges; its counters stay in the sum."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined,no-untyped-call]


def _remove_orphaned_metrics_dirs() -> None:
    for path in Path(tempfile.gettempdir()).glob(f"{METRICS_PREFIX}*-*"):
        pid = path.name.removeprefix(METRICS_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
