"""``python -m shop serve`` (what run.sh execs): embedded database, clean stops, no orphans,
and one clear line for every reason it cannot start."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.helpers import ROOT, eventually, fresh, server_env, shared_tmp_dir, stop, wait_until_up

pytestmark = pytest.mark.e2e


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = shared_tmp_dir("shop-test-data-")
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


def start(data_dir: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start `shop serve` as a terminal would: in a process group of its own; its output
    goes to ``log_of(data_dir)``."""
    environ = server_env(DATA_DIR=str(data_dir), **env)
    with log_of(data_dir).open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shop", "serve"],
            env=environ,
            cwd=ROOT,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{environ['PORT']}"


def log_of(data_dir: Path) -> Path:
    return data_dir.parent / "serve.log"


def serve(data_dir: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    process, url = start(data_dir, **env)
    try:
        wait_until_up(url, process, timeout=60)
    except BaseException:
        stop(process)  # never leave a server (and its embedded PostgreSQL) behind
        raise
    return process, url


def run_to_exit(data_dir: Path, **env: str) -> subprocess.CompletedProcess[bytes]:
    environ = server_env(DATA_DIR=str(data_dir), **env)
    command = [sys.executable, "-m", "shop", "serve"]
    return subprocess.run(command, env=environ, cwd=ROOT, capture_output=True, timeout=60)


def postmaster_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "postgres" / "postmaster.pid"
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def wait_all_gone(pids: set[int], timeout: float = 30, what: str = "every process") -> None:
    """Wait until every pid has exited; fail the test after ``timeout`` seconds."""
    alive = set(pids)

    def all_gone() -> bool:
        alive.difference_update({pid for pid in alive if _gone(pid)})
        return not alive

    eventually(all_gone, timeout, what=f"{what} to exit (of pids {sorted(pids)})")


def _gone(pid: int) -> bool:
    """Exited: no such process any more, or a zombie waiting for its parent to reap it."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def family(process: subprocess.Popen[bytes], data_dir: Path) -> set[int]:
    """Every process `shop serve` started: gunicorn, its workers, the reaper, PostgreSQL."""
    children = psutil.Process(process.pid).children(recursive=True)
    pids = {child.pid for child in children}
    postmaster = postmaster_pid(data_dir)
    assert postmaster is not None
    pids.add(postmaster)
    return pids


class TestEmbeddedMode:
    def test_survives_a_restart_with_its_data_and_tokens(self, data_dir: Path) -> None:
        process, url = serve(data_dir)
        try:
            reply = fresh("POST", f"{url}/api/auth", json={"username": "ann", "password": "pw"})
            token = reply.json()["token"]
            assert fresh("GET", f"{url}/api/buy/cup", token).status_code == 200
            postmaster = postmaster_pid(data_dir)
        finally:
            assert stop(process) == 0
        assert postmaster is not None
        wait_all_gone({postmaster}, timeout=5, what="PostgreSQL, on SIGTERM too,")
        assert (data_dir / "jwt_secret").stat().st_mode & 0o777 == 0o600

        process, url = serve(data_dir)
        try:
            info = fresh("GET", f"{url}/api/info", token)
            assert info.status_code == 200
            assert info.json()["coins"] == 980
        finally:
            stop(process)

    def test_sigkill_of_the_launcher_leaves_no_process_behind(self, data_dir: Path) -> None:
        process, _ = serve(data_dir)
        pids = family(process, data_dir)
        assert len(pids) >= 5  # gunicorn, two workers, the reaper, PostgreSQL
        process.kill()
        process.wait()
        wait_all_gone(pids, what="the orphans of a SIGKILLed launcher")

        # The next run finds the stale state (pgserver's handle list) and stops cleanly.
        process, _ = serve(data_dir)
        postmaster = postmaster_pid(data_dir)
        assert stop(process) == 0
        assert postmaster is not None
        wait_all_gone({postmaster}, timeout=10)

    def test_ctrl_c_stops_everything_without_a_traceback(self, data_dir: Path) -> None:
        process, _ = serve(data_dir)
        pids = family(process, data_dir)
        ours = [Path(tempfile.gettempdir()).glob(f"shop-metrics-{pid}-*") for pid in pids]
        assert sum(len(list(dirs)) for dirs in ours) == 1  # gunicorn's, while it runs
        os.killpg(process.pid, signal.SIGINT)  # what a terminal sends to its foreground group
        assert process.wait(timeout=60) == 0
        stderr = log_of(data_dir).read_bytes()
        assert b"Traceback" not in stderr
        assert b"embedded PostgreSQL stopped" in stderr
        wait_all_gone(pids, timeout=10)
        left = [
            path
            for pid in pids
            for path in Path(tempfile.gettempdir()).glob(f"shop-metrics-{pid}-*")
        ]
        assert left == []


class TestRefusalsToStart:
    def test_a_second_serve_on_the_same_data_dir_stops_with_one_line(self, data_dir: Path) -> None:
        process, _ = serve(data_dir)
        try:
            second = run_to_exit(data_dir)
        finally:
            stop(process)
        assert second.returncode == 1
        lines = second.stderr.decode().strip().splitlines()
        assert lines == [
            f"shop: DATA_DIR {data_dir} is in use by another `shop serve` (pid {process.pid})"
        ]

    def test_a_busy_port_stops_with_one_line(self, data_dir: Path) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            started = time.monotonic()
            result = run_to_exit(data_dir, PORT=str(port))
        assert result.returncode == 1
        assert result.stderr.decode().strip().splitlines() == [
            f"shop: port {port} is already in use (set PORT)"
        ]
        assert time.monotonic() - started < 15

    def test_an_unreachable_database_gives_a_short_clear_message(self, data_dir: Path) -> None:
        result = run_to_exit(
            data_dir,
            DATABASE_URL="postgresql://nobody@127.0.0.1:1/none",
            JWT_SECRET="0123456789abcdef0123456789abcdef",
            DB_STARTUP_TIMEOUT="2",
        )
        stderr = result.stderr.decode()
        assert result.returncode == 1
        assert "Traceback" not in stderr
        assert len(stderr.strip().splitlines()) <= 8, stderr
        assert (
            stderr.strip().splitlines()[-1].startswith("shop: database not reachable after 2 s: ")
        )

    def test_a_weak_secret_is_refused_with_a_clear_message(self, database_url: str) -> None:
        env = server_env(DATABASE_URL=database_url, JWT_SECRET="secret")
        result = subprocess.run(
            [sys.executable, "-m", "shop", "serve"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert result.stderr.decode().strip() == (
            "shop: configuration error: JWT_SECRET must be at least 32 characters"
        )


class TestMigrateCommand:
    def test_brings_a_database_to_head(self, database_url: str) -> None:
        env = server_env(DATABASE_URL=database_url, JWT_SECRET="0123456789abcdef" * 2)
        result = subprocess.run(
            [sys.executable, "-m", "shop", "migrate"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr.decode()
        assert b"newest revision" in result.stdout

    def test_needs_a_database_url(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "shop", "migrate"],
            env=server_env(),
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert b"DATABASE_URL is not set" in result.stderr
