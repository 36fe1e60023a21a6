"""Run an embedded PostgreSQL (the `pgserver` package) under a data directory.

pgserver starts the server with ``pg_ctl``, which detaches it. So that no server outlives
its launcher, even one killed with SIGKILL, a small reaper process (shop/db/reaper.py) is
told by the kernel when the launcher dies and stops the server then.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from shop.process import die_with_parent, pid_alive
from shop.settings import SettingsError

log = logging.getLogger(__name__)

DATABASE = "shop"  # created on first start, next to the default "postgres"
STOP_TIMEOUT_SECONDS = 30.0


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in ``<data_dir>/postgres``."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        self.pgdata = (data_dir / "postgres").resolve()
        self._delete_on_stop = delete_on_stop
        self._server: Any = None
        self._reaper: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start (or reuse) the server and return a ``postgresql://`` URL for the shop database."""
        # pgserver asks platformdirs for a private runtime dir and warns when none is set.
        if "XDG_RUNTIME_DIR" not in os.environ:
            runtime = self.pgdata.parent / "run"
            runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        logging.getLogger("pgserver").setLevel(logging.WARNING)
        try:
            from pgserver.postgres_server import get_server  # only embedded mode needs it
        except ImportError:
            raise SettingsError(
                "DATABASE_URL is not set and the embedded PostgreSQL is not installed "
                "(./run.sh installs it from requirements/dev.txt)"
            ) from None

        self.pgdata.mkdir(parents=True, exist_ok=True)
        forget_stale_handles(self.pgdata)
        mode = "delete" if self._delete_on_stop else "stop"
        self._server = get_server(self.pgdata, cleanup_mode=mode)
        self._reaper = start_reaper(self.pgdata)
        # DATABASE is a constant, not input: nothing to inject.
        exists = self._server.psql("SELECT 1 FROM pg_database WHERE datname = 'shop';")
        if "(1 row)" not in exists:
            self._server.psql("CREATE DATABASE shop;")
        url: str = self._server.get_uri(DATABASE)
        log.info("embedded PostgreSQL ready in %s", self.pgdata)
        return url

    def stop(self) -> None:
        """Stop the server (and delete its data if asked to at construction); wait until it is
        really gone."""
        if self._reaper is not None:
            reaper, self._reaper = self._reaper, None
            reaper.kill()
            reaper.wait()
        if self._server is None:
            return
        server, self._server = self._server, None
        pid = server.get_pid()
        server.cleanup()
        if pid is not None and not _wait_gone(pid, STOP_TIMEOUT_SECONDS):
            log.warning("embedded PostgreSQL (pid %s) ignored the stop; killing it", pid)
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)
        log.info("embedded PostgreSQL stopped")


def forget_stale_handles(pgdata: Path) -> None:
    """Drop pids of dead processes from pgserver's handle list.

    pgserver stops the server only when the last pid listed there lets go; a launcher
    killed with SIGKILL leaves its pid behind, and every later stop would then leave the
    server running.
    """
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def start_reaper(pgdata: Path) -> subprocess.Popen[bytes]:
    """Start the process that stops the server if this one dies without doing it."""
    command = [sys.executable, "-m", "shop.db.reaper", str(pgdata), str(os.getpid())]
    return subprocess.Popen(  # noqa: S603 - a fixed command, no shell
        command, preexec_fn=die_with_parent, start_new_session=True
    )


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
