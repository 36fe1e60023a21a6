"""Start the service (and a trace sink) on this box for a load run, and stop them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LocalService:
    """``python -m shop serve`` against ``database_url``, production-like observability."""

    database_url: str
    jwt_secret: str
    log_path: Path
    tracing: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    source: Path = ROOT
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The server's pid (``shop serve`` execs gunicorn: this is its master)."""
        return self._processes[-1].pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalService:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "JWT_SECRET": self.jwt_secret,
            "PORT": str(self.port),
            "LOG_FORMAT": "json",
            "PYTHONPATH": str(self.source),
            **self.extra_env,
        }
        if self.tracing:
            sink_port = free_port()
            self._spawn([sys.executable, "-m", "ammo.otlp_sink", "--port", str(sink_port)], env)
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink_port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            server = subprocess.Popen(  # noqa: S603 - fixed command
                [sys.executable, "-m", "shop", "serve"],
                env=env,
                cwd=self.source,
                stdout=log,
                stderr=log,
            )
        self._processes.append(server)
        self._wait_ready(server)
        return self

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self._processes.clear()

    def _spawn(self, command: list[str], env: dict[str, str]) -> None:
        self._processes.append(
            subprocess.Popen(command, env=env, cwd=ROOT)  # noqa: S603 - fixed command
        )

    def _wait_ready(self, server: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"the service exited; see {self.log_path}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass  # a worker still booting may accept the connection and answer late
            time.sleep(0.2)
        raise RuntimeError(f"the service did not get ready; see {self.log_path}")
