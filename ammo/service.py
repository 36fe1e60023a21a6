"""Start what a load run measures on this box: the shop, the bare-Flask floor, a trace sink."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from ammo import pinning
from ammo.cpu import process_tree

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LocalService:
    """The shop (``python -m shop serve``), or with ``bare`` the floor app on the same server.

    ``tracing`` starts an OTLP/HTTP sink standing in for Tempo and points the service at it;
    without it the service has no OTLP endpoint. ``source`` is a checkout of the shop to run
    (another build, for before/after comparisons on one box).
    """

    database_url: str
    jwt_secret: str
    log_path: Path
    tracing: bool = False
    workers: int = 2
    bare: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    source: Path = ROOT
    # CPUs for the server's processes and for the trace sink (a Tempo stand-in, which in
    # production runs elsewhere): see ammo/pinning.py. None: not pinned.
    cpus: frozenset[int] | None = None
    sink_cpus: frozenset[int] | None = None
    _server: subprocess.Popen[bytes] | None = None
    _sink: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The gunicorn master's pid (``shop serve`` execs gunicorn with a DATABASE_URL)."""
        assert self._server is not None, "start() first"
        return self._server.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        return [pid for pid in process_tree(self.pid) if pid != self.pid]

    def server_pids(self) -> list[int]:
        return process_tree(self.pid)

    def sink_pids(self) -> list[int]:
        return [self._sink.pid] if self._sink is not None else []

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(
            DATABASE_URL=self.database_url,
            JWT_SECRET=self.jwt_secret,
            PORT=str(self.port),
            WEB_CONCURRENCY=str(self.workers),
            LOG_FORMAT="json",
            PYTHONPATH=os.pathsep.join(dict.fromkeys([str(self.source), str(ROOT)])),
        )
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        if not self.bare:
            return [sys.executable, "-m", "shop", "serve"]
        conf = str(self.source / "shop" / "gunicorn_conf.py")
        # gunicorn's own gevent worker: the floor is the framework, without the shop's worker.
        return [sys.executable, "-m", "gunicorn", "-c", conf, "-k", "gevent", "ammo.bare_app:app"]

    def start(self) -> LocalService:
        env = self.environment()
        if self.tracing:
            sink_port = free_port()
            sink = [sys.executable, "-m", "ammo.otlp_sink", "--port", str(sink_port)]
            self._sink = subprocess.Popen(
                sink, env=env, cwd=ROOT, preexec_fn=pinning.before_exec(self.sink_cpus)
            )
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink_port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._server = subprocess.Popen(
                self.command(),
                env=env,
                cwd=self.source,
                stdout=log,
                stderr=log,
                preexec_fn=pinning.before_exec(self.cpus),
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop at once: gunicorn's quick shutdown (SIGQUIT), the sink with SIGTERM.

        A graceful SIGTERM made gunicorn wait its full 20 s graceful timeout for one worker
        after every run (seen on this stack); nothing in flight matters once k6 has finished.
        """
        for process, signum in ((self._server, signal.SIGQUIT), (self._sink, signal.SIGTERM)):
            if process is None:
                continue
            process.send_signal(signum)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._server = self._sink = None

    def _wait_ready(self) -> None:
        assert self._server is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise RuntimeError(f"the service exited; see {self.log_path}")
            try:
                ready = requests.get(f"{self.url}/readyz", timeout=5)
                if ready.status_code == 200 and len(self.worker_pids()) >= self.workers:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass  # a worker still booting may accept the connection and answer late
            time.sleep(0.2)
        raise RuntimeError(f"the service did not get ready; see {self.log_path}")
