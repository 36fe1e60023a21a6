"""``shop serve``: check the port, start the embedded database if needed, migrate once,
then run gunicorn; stop everything cleanly, and leave nothing behind if killed."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import FrameType

from shop.db.embedded import EmbeddedPostgres
from shop.db.migrate import prepare_database
from shop.process import die_with_parent
from shop.settings import Settings

log = logging.getLogger(__name__)

# Loaded by file path: importing the app in gunicorn's master would pull in libraries
# that must only be imported after gevent patches each worker.
GUNICORN_CONF = str(Path(__file__).with_name("gunicorn_conf.py"))
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, "shop.wsgi:app"]


class CannotStart(RuntimeError):
    """Something outside the configuration keeps the service from starting."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived before gunicorn was running: unwind and clean up."""


def serve(settings: Settings) -> int:
    """Run the service in the foreground until SIGINT or SIGTERM; return its exit code."""
    _stop_on_signals()
    check_port_free(settings.port)
    if not settings.embedded:
        prepare_database(
            settings.database_url, settings.db_startup_timeout, settings.db_connect_timeout
        )
        os.execvpe(GUNICORN[0], GUNICORN, os.environ)  # noqa: S606 - a fixed command, no shell
    with data_dir_lock(settings.data_dir):
        database = EmbeddedPostgres(settings.data_dir)
        try:
            settings = replace(
                settings,
                database_url=database.start(),
                jwt_secret=settings.jwt_secret or embedded_jwt_secret(settings.data_dir),
            )
            prepare_database(settings.database_url, settings.db_startup_timeout)
            log.info("serving on :%s with the embedded database", settings.port)
            return _run_gunicorn({**os.environ, **settings.to_env()})
        finally:
            database.stop()


def check_port_free(port: int) -> None:
    """Refuse to start on a port something already listens on (with one clear line).

    gunicorn's workers bind with SO_REUSEPORT, so they would silently share the port with
    an earlier instance of the shop, or restart forever against any other program.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 - the service listens on all interfaces
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise CannotStart(f"port {port} is already in use (set PORT)") from None
            raise


@contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold DATA_DIR for this process; refuse if another `shop serve` holds it.

    An advisory lock (flock) dies with its process, SIGKILL included: no stale lock files.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            raise CannotStart(
                f"DATA_DIR {data_dir} is in use by another `shop serve` (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)


def embedded_jwt_secret(data_dir: Path) -> str:
    """Return the secret kept under ``data_dir``, generating it on first start.

    All workers and restarts then accept the same tokens.
    """
    path = data_dir / "jwt_secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def _stop_on_signals() -> None:
    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise Interrupted

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _run_gunicorn(env: dict[str, str]) -> int:
    # Signals wait until the handler that forwards them is in place: none may fall between
    # starting gunicorn and being able to stop it.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        # Its own session keeps Ctrl-C (sent to the terminal's process group) away from
        # gunicorn and its workers: this process stops them, once, with SIGTERM.
        server = subprocess.Popen(  # noqa: S603 - a fixed command, no shell
            GUNICORN, env=env, start_new_session=True, preexec_fn=_child_setup
        )

        def forward(_signum: int, _frame: FrameType | None) -> None:
            server.send_signal(signal.SIGTERM)

        for signum in STOP_SIGNALS:
            signal.signal(signum, forward)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    return server.wait()


def _child_setup() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    die_with_parent()
