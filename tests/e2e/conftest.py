"""A real gunicorn + gevent process on a free port, against the throwaway database."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests

from shop.launcher import GUNICORN
from tests.factories import HASH_MEMORY_KIB, HASH_TIME_COST, PASSWORD, random_username
from tests.otlp_receiver import OtlpReceiver

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(
    url: str, process: subprocess.Popen[bytes], timeout: float = 30, path: str = "/readyz"
) -> None:
    """Poll ``url + path`` until it answers 200; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            ready = fresh("GET", f"{url}{path}", timeout=5)
            if ready.status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # a worker still booting may accept the connection and answer late
        time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not become ready in {timeout}s")


def fresh(
    method: str, url: str, token: str | None = None, timeout: float = 30, **kwargs: Any
) -> requests.Response:
    """Send one request on a connection of its own, closed right after: the kernel may hand
    it to either worker, and no idle keep-alive connection stalls a graceful stop."""
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, url, headers=headers, timeout=timeout, **kwargs)


class User(NamedTuple):
    """A signed-up user: the name, and the headers that authenticate as them."""

    name: str
    headers: dict[str, str]


def sign_up(url: str, name: str | None = None, password: str = PASSWORD) -> User:
    """Create a user on the server at ``url`` (a random name unless given) and log in."""
    username = name or random_username()
    reply = fresh("POST", f"{url}/api/auth", json={"username": username, "password": password})
    assert reply.status_code == 200, reply.text
    return User(username, {"Authorization": f"Bearer {reply.json()['token']}"})


def stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


DEBUG_TOKEN = "debug-token-for-tests"


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    receiver: OtlpReceiver

    def log_lines(self) -> list[str]:
        return self.log_path.read_text().splitlines()


def server_env(**extra: str) -> dict[str, str]:
    """Return the environment of a server under test: a free port, two workers, cheap hashes."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "JWT_SECRET")}
    env.update(
        PORT=str(free_port()),
        WEB_CONCURRENCY="2",
        PASSWORD_HASH_TIME_COST=str(HASH_TIME_COST),
        PASSWORD_HASH_MEMORY_KIB=str(HASH_MEMORY_KIB),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def server(
    database_url: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Two workers with everything on: JSON logs to a file, OTLP export, /debug."""
    receiver = OtlpReceiver().start()
    workdir = tmp_path_factory.mktemp("server")
    env = server_env(
        DATABASE_URL=database_url,
        JWT_SECRET=jwt_secret,
        LOG_FORMAT="json",
        DEBUG_TOKEN=DEBUG_TOKEN,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME="shop-under-test",
        OTEL_BSP_SCHEDULE_DELAY="100",
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "metrics"),
    )
    with running_server(env, workdir, receiver) as running:
        yield running


@contextmanager
def running_server(env: dict[str, str], workdir: Path, receiver: OtlpReceiver) -> Iterator[Server]:
    """Run gunicorn with ``env`` (logs to ``workdir/server.log``) until the block ends; then
    stop it and ``receiver``."""
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(GUNICORN, env=env, cwd=ROOT, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{env['PORT']}"
    try:
        wait_until_up(url, process)
        yield Server(url, process, log_path, receiver)
    finally:
        stop(process)
        receiver.stop()
