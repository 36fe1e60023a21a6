"""``shop serve``: start the embedded database if needed, then gunicorn, and stop both cleanly."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from shop.db.embedded import EmbeddedPostgres
from shop.settings import Settings

log = logging.getLogger(__name__)

# Loaded by file path: importing the `shop` package in gunicorn's master would pull in
# libraries that must only be imported after gevent patches each worker.
GUNICORN_CONF = str(Path(__file__).with_name("gunicorn_conf.py"))
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, "shop.wsgi:app"]


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


def serve() -> int:
    """Run the service in the foreground until SIGINT or SIGTERM; return gunicorn's exit code."""
    env = dict(os.environ)
    if env.get("DATABASE_URL"):
        Settings.from_env(env)  # fail here, with one clear line, rather than in every worker
        os.execvpe(GUNICORN[0], GUNICORN, env)  # noqa: S606 - a fixed command, no shell
    data_dir = Path(env.get("DATA_DIR", ".data"))
    database = EmbeddedPostgres(data_dir)
    env["DATABASE_URL"] = database.start()
    env.setdefault("JWT_SECRET", embedded_jwt_secret(data_dir))
    Settings.from_env(env)
    log.info("serving on :%s with the embedded database", env.get("PORT", "8080"))
    try:
        return _run_until_signalled(env)
    finally:
        database.stop()
        log.info("embedded PostgreSQL stopped")


def _run_until_signalled(env: dict[str, str]) -> int:
    server = subprocess.Popen(GUNICORN, env=env)  # noqa: S603 - a fixed command, no shell

    def forward(signum: int, _frame: object) -> None:
        server.send_signal(signal.SIGTERM if signum == signal.SIGINT else signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    return server.wait()
