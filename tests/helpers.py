"""Plain helpers the tests of every layer share; the fixtures stay in the conftest modules.

Polling, signing a user up (through Flask's test client or over HTTP), reading replies,
running a real gunicorn, and reading the bundled stack's files.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pytest
import requests
import yaml
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shop.api import context
from shop.bootstrap import create_app
from shop.launcher import GUNICORN
from shop.services.passwords import PasswordHasher
from shop.settings import Settings
from tests.factories import HASH_MEMORY_KIB, HASH_TIME_COST, PASSWORD, random_username
from tests.otlp_receiver import OtlpReceiver

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "grafana"
DEBUG_TOKEN = "debug-token-for-tests"


def eventually(
    check: Callable[[], T],
    timeout: float = 10,
    interval: float = 0.05,
    what: str = "a truthy answer",
) -> T:
    """Poll ``check`` until it returns something truthy and return that; fail the test,
    naming ``what`` it waited for and the last answer, after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout} s for {what}; the last answer was {answer!r}")
        time.sleep(interval)


# Users, over either transport.


class User(NamedTuple):
    """A signed-up user: the name, and the headers that authenticate as them."""

    name: str
    headers: dict[str, str]

    @property
    def token(self) -> str:
        return self.headers["Authorization"].removeprefix("Bearer ")


Login = Callable[..., User]


def sign_up(via: FlaskClient | str, name: str | None = None, password: str = PASSWORD) -> User:
    """Sign a user up (a random name unless given) through a Flask test client, or over HTTP
    to the server at the base URL ``via``; return them logged in."""
    credentials = {"username": name or random_username(), "password": password}
    if isinstance(via, str):
        reply = fresh("POST", f"{via}/api/auth", json=credentials)
        assert reply.status_code == 200, reply.text
        token = reply.json()["token"]
    else:
        answer = via.post("/api/auth", json=credentials)
        assert answer.status_code == 200, answer.data
        token = body(answer)["token"]
    return User(credentials["username"], {"Authorization": f"Bearer {token}"})


def body(reply: TestResponse) -> dict[str, Any]:
    """Return the reply's JSON object (failing the test if it is anything else)."""
    document = reply.get_json()
    assert isinstance(document, dict), reply.data
    return document


def error_of(reply: TestResponse) -> str:
    """Return the reply's ``errors`` message: every failure body is ``{"errors": "..."}``."""
    document = body(reply)
    assert set(document) == {"errors"} and isinstance(document["errors"], str), document
    return document["errors"]


def coins(client: FlaskClient, user: User) -> int:
    """Return ``user``'s balance as GET /api/info reports it."""
    balance = body(client.get("/api/info", headers=user.headers))["coins"]
    assert isinstance(balance, int)
    return balance


@contextmanager
def own_app(settings: Settings, hasher: PasswordHasher | None = None) -> Iterator[Flask]:
    """Build an app of a test's own from ``settings`` (and a stand-in ``hasher``, where a
    test needs one the settings cannot describe); stop its background work afterwards."""
    flask_app = create_app(settings)
    wired = flask_app.extensions["shop"]
    if hasher is not None:  # before the app serves anything, as create_app's own wiring is
        context.init_app(flask_app, replace(wired, hasher=hasher))
    try:
        yield flask_app
    finally:
        wired.monitor.stop()
        wired.engine.dispose()


# Processes: real servers on free ports.


def worker_name() -> str:
    """Name this pytest process: its xdist worker id (``gw0``, ``gw1``, ...) or ``main``."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def shared_tmp_dir(prefix: str) -> Path:
    """Make a directory the embedded server's own user can reach, when run as root.

    Not under pytest's tmp_path: every pytest session (and xdist worker) resets
    /tmp/pytest-of-<user> to mode 0700, which locks out a server another session started.
    """
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{worker_name()}-"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop(process: subprocess.Popen[bytes]) -> int:
    process.terminate()
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def fresh(
    method: str, url: str, token: str | None = None, timeout: float = 30, **kwargs: Any
) -> requests.Response:
    """Send one request on a connection of its own, closed right after: the kernel may hand
    it to either worker, and no idle keep-alive connection stalls a graceful stop."""
    headers = {"Connection": "close", **kwargs.pop("headers", {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, url, headers=headers, timeout=timeout, **kwargs)


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


# The bundled stack's files and tools.


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def require_binary(name: str, package: str) -> str:
    """Return the binary's path, or skip loudly: these checks matter and CI installs them."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"SKIPPED CHECK: `{name}` is not installed, so this monitoring check did not run. "
            f"Install Debian's `{package}` package (.ci/run does) to run it."
        )
    return path


def installed_binary(name: str, package: str) -> str:
    """Return the binary's path, installing Debian's ``package`` first when it is missing and
    we are root with apt-get; else skip loudly (.ci/run installs it)."""
    found = shutil.which(name)
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        apt_install(package)
        found = shutil.which(name)
    if found is None:
        pytest.skip(
            f"SKIPPED CHECK: `{name}` is not installed and could not be installed "
            f"(as root: apt-get install {package}; .ci/run does)"
        )
    return found


def apt_install(*packages: str) -> None:
    """Install Debian packages, one pytest process at a time (dpkg takes a lock of its own).
    Debian's postinst may try to start a daemon; a container's policy-rc.d refuses, and no
    test uses a daemon's default port."""
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    with open("/tmp/shop-tests-apt.lock", "w") as lock:  # noqa: S108 - shared on purpose
        fcntl.flock(lock, fcntl.LOCK_EX)
        if subprocess.run(command, env=env, capture_output=True, check=False).returncode:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(command, env=env, capture_output=True, check=False)


def alert_rules(prometheus_dir: Path) -> list[dict[str, Any]]:
    """Every alerting rule of the rule files ``prometheus_dir/prometheus.yml`` loads."""
    files = load_yaml(prometheus_dir / "prometheus.yml")["rule_files"]
    return [
        rule
        for name in files
        for group in load_yaml(prometheus_dir / name)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
