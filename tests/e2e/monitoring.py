"""Real Prometheus and Alertmanager processes on loopback, and a webhook sink, for live tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from tests.helpers import free_port, require_binary, wait_until_up


@contextmanager
def running(command: list[str], workdir: Path, url: str) -> Iterator[str]:
    """Run ``command`` with its output in ``workdir``; yield ``url`` once it answers /-/ready."""
    log = (workdir / "process.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        wait_until_up(url, process, path="/-/ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@contextmanager
def prometheus(config: dict[str, Any], workdir: Path, *flags: str) -> Iterator[str]:
    """Start Debian's Prometheus with ``config`` on a free loopback port; yield its URL."""
    binary = require_binary("prometheus", "prometheus")
    (workdir / "prometheus.yml").write_text(json.dumps(config))
    address = f"127.0.0.1:{free_port()}"
    command = [
        binary,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address={address}",
        *flags,
    ]
    with running(command, workdir, f"http://{address}") as url:
        yield url


def alertmanager_binary() -> str:
    """Debian names the daemon prometheus-alertmanager; upstream names it alertmanager."""
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found is None:
        require_binary("prometheus-alertmanager", "prometheus-alertmanager")  # skips loudly
    assert found is not None
    return found


@contextmanager
def alertmanager(config: dict[str, Any], workdir: Path) -> Iterator[str]:
    """Start Alertmanager with ``config`` (no clustering) on a free loopback port."""
    (workdir / "alertmanager.yml").write_text(json.dumps(config))
    address = f"127.0.0.1:{free_port()}"
    command = [
        alertmanager_binary(),
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address={address}",
        "--cluster.listen-address=",
    ]
    with running(command, workdir, f"http://{address}") as url:
        yield url


class WebhookSink:
    """An HTTP server on loopback that keeps every JSON body POSTed to it, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> WebhookSink:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def query(prometheus_url: str, expr: str) -> dict[str, Any]:
    reply = requests.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
    body: dict[str, Any] = reply.json()
    return body
