"""``python -m shop serve`` (what run.sh execs): embedded database, clean stop, data reused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import ROOT, server_env, stop, wait_until_up

pytestmark = pytest.mark.e2e


def serve(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = server_env(DATA_DIR=str(data_dir))
    process = subprocess.Popen([sys.executable, "-m", "shop", "serve"], env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{env['PORT']}"
    try:
        wait_until_up(url, process, timeout=60)
    except BaseException:
        stop(process)  # never leave a server (and its embedded PostgreSQL) behind
        raise
    return process, url


def call(method: str, url: str, token: str | None = None, **kwargs: object) -> requests.Response:
    """Send one request on a connection that is closed right after (no idle keep-alive).

    gunicorn's graceful stop waits for open connections; an idle one would stall it.
    """
    headers = {"Connection": "close"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, url, headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


def postgres_running(data_dir: Path) -> bool:
    pid_file = data_dir / "postgres" / "postmaster.pid"
    return pid_file.exists()


def test_embedded_mode_survives_a_restart_with_its_data_and_tokens(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    process, url = serve(data_dir)
    try:
        reply = call("POST", f"{url}/api/auth", json={"username": "ann", "password": "pw"})
        token = reply.json()["token"]
        assert call("GET", f"{url}/api/buy/cup", token).status_code == 200
    finally:
        assert stop(process) == 0
    assert not postgres_running(data_dir), "SIGTERM must stop the embedded PostgreSQL too"
    assert (data_dir / "jwt_secret").stat().st_mode & 0o777 == 0o600

    process, url = serve(data_dir)
    try:
        info = call("GET", f"{url}/api/info", token)
        assert info.status_code == 200
        assert info.json()["coins"] == 980
    finally:
        stop(process)


def test_serve_refuses_a_weak_secret_with_a_clear_message(database_url: str) -> None:
    env = server_env(DATABASE_URL=database_url, JWT_SECRET="secret")
    result = subprocess.run(
        [sys.executable, "-m", "shop", "serve"], env=env, cwd=ROOT, capture_output=True, timeout=60
    )
    assert result.returncode == 2
    assert b"JWT_SECRET must be at least 32 characters" in result.stderr


def test_migrate_command_brings_a_database_to_head(database_url: str) -> None:
    env = server_env(DATABASE_URL=database_url)
    result = subprocess.run(
        [sys.executable, "-m", "shop", "migrate"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b"newest revision" in result.stdout


def test_migrate_command_needs_a_database_url() -> None:
    env = server_env()
    result = subprocess.run(
        [sys.executable, "-m", "shop", "migrate"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert b"DATABASE_URL is not set" in result.stderr
