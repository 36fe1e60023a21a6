"""A PostgreSQL of a test module's own, which it may restart, kill -9 or freeze."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import psutil
from sqlalchemy.engine import make_url

from shop.db.embedded import EmbeddedPostgres
from shop.db.reaper import PGSERVER_USER
from tests.helpers import eventually


class OwnPostgres:
    """An embedded server in a directory of its own, driven with the real pg_ctl."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._server = EmbeddedPostgres(root, delete_on_stop=True)
        self.url = self._server.start()
        self.pgdata = root / "postgres"
        self.socket_dir = make_url(self.url).query["host"]

    def restart(self) -> None:
        """Stop fast (sessions are cut) and start again; return once it accepts connections."""
        before = self.postmaster_pid()
        self._pg_ctl("-m", "fast", "-w", "-t", "30", "restart", *self._start_options())
        if self.postmaster_pid() == before:
            raise RuntimeError("PostgreSQL did not restart")

    def kill_and_start(self) -> None:
        """SIGKILL the postmaster (its backends then exit), then start the server again."""
        members = self._cluster_processes()  # found through the postmaster, so before it dies
        os.kill(self.postmaster_pid(), signal.SIGKILL)
        gone, alive = psutil.wait_procs(members, timeout=30)
        if alive:  # shared memory is released only once every backend has exited
            raise RuntimeError(f"backends outlived their killed postmaster: {alive}")
        self._pg_ctl("-w", "-t", "30", "start", *self._start_options())

    def freeze(self) -> list[int]:
        """SIGSTOP every process of the cluster; return their pids for thaw() once the
        kernel reports each one stopped."""
        members = self._cluster_processes()
        for process in members:
            os.kill(process.pid, signal.SIGSTOP)
        eventually(
            lambda: all(_stopped(process) for process in members),
            what=f"every process of the cluster to stop: {members}",
        )
        return [process.pid for process in members]

    def thaw(self, pids: list[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """Stop whichever postmaster runs now, then clean up: after restart() or
        kill_and_start() it is not the one pgserver started, which pgserver's own stop
        skips (that one is gone) before deleting the data under the new one."""
        if (self.pgdata / "postmaster.pid").exists():
            self._pg_ctl("-m", "fast", "-w", "-t", "30", "stop", check=False)
        self._server.stop()
        shutil.rmtree(self.root.parent, ignore_errors=True)

    def postmaster_pid(self) -> int:
        return int((self.pgdata / "postmaster.pid").read_text().split()[0])

    def _start_options(self) -> list[str]:
        # pgserver's own start options: no TCP, the socket in the same directory.
        return ["-l", str(self.pgdata / "log"), "-o", f'-h "" -k {self.socket_dir}']

    def _cluster_processes(self) -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["name", "cmdline", "ppid"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if process.info["name"] == "postgres" and (
                str(self.pgdata) in cmdline or _child_of_cluster(process, self.pgdata)
            ):
                found.append(process)
        return found

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        user = PGSERVER_USER if os.geteuid() == 0 else None
        command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args]
        subprocess.run(command, user=user, check=check, capture_output=True, timeout=60)


def _stopped(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_STOPPED
    except psutil.NoSuchProcess:
        return True  # a backend that exited is as still as a stopped one


def _child_of_cluster(process: psutil.Process, pgdata: Path) -> bool:
    """Backends' command lines name no data directory: find them through their parent."""
    try:
        parent = psutil.Process(process.info["ppid"])
        return str(pgdata) in " ".join(parent.cmdline())
    except psutil.Error:
        return False
