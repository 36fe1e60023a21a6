"""``python -m shop.db.reaper PGDATA LAUNCHER_PID``: stop the embedded PostgreSQL when the
launcher dies.

The launcher starts this with ``die_with_parent``: the kernel sends it SIGTERM when the
launcher exits for any reason, SIGKILL included. A launcher that stops the server itself
kills this process first. Imports nothing heavy: it only waits.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

# pgserver runs the server as this system user when started by root.
PGSERVER_USER = "pgserver"


def stop_server(pgdata: Path) -> None:
    """Stop the server in ``pgdata`` fast (active sessions are rolled back)."""
    from observability.compat import postgres_bin_path

    user = PGSERVER_USER if os.geteuid() == 0 and _user_exists(PGSERVER_USER) else None
    command = [str(postgres_bin_path() / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"]
    subprocess.run(command, user=user, check=False, capture_output=True, timeout=60)  # noqa: S603


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def main(pgdata: Path, launcher_pid: int) -> int:
    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop_server(pgdata)
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != launcher_pid:  # the launcher died before the kernel could tell us
        on_term(signal.SIGTERM, None)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2])))
