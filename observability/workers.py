"""Reach every worker of this gunicorn: each serves /debug on a private unix socket too.

A request to the shop's port lands on whichever worker the kernel picks (SO_REUSEPORT), so
the worker that answers forwards ``?pid=N`` to worker N's socket and asks every socket for
``?workers=all``. The sockets live in ``$PROMETHEUS_MULTIPROC_DIR/debug`` (one directory per
gunicorn run, mode 0700), named ``<pid>.sock``; a socket nobody listens on belongs to a dead
worker and is removed when found. Forwarded requests carry the caller's token and are
checked again.
"""

from __future__ import annotations

import atexit
import http.client
import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
# sun_path holds 108 bytes on Linux; a longer path cannot be bound.
MAX_SOCKET_PATH = 107
_serving: dict[str, Any] = {}


def socket_dir() -> Path | None:
    """Return this service's socket directory, or None outside a multiprocess server."""
    base = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(base, "debug") if base else None


def socket_path(pid: int) -> Path | None:
    directory = socket_dir()
    return None if directory is None else directory / f"{pid}.sock"


def serve(app: Callable[..., Any]) -> bool:
    """Serve the WSGI ``app``'s /debug paths on this worker's socket; gevent workers only."""
    from gevent import monkey

    path = socket_path(os.getpid())
    if path is None or not monkey.is_module_patched("socket") or _serving.get("pid"):
        return False
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        log.warning("no per-worker /debug socket: %s is too long for a unix socket", path)
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # a dead worker with this pid left it
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(64)
    from gevent.pywsgi import WSGIServer

    server = WSGIServer(listener, _debug_only(app), log=None, error_log=log)
    server.start()
    _serving.update(pid=os.getpid(), server=server)
    atexit.register(path.unlink, missing_ok=True)
    return True


def _debug_only(app: Callable[..., Any]) -> Callable[..., Any]:
    def debug_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("PATH_INFO", "").startswith("/debug/"):
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"errors": "only /debug is served on this socket"}']
        return app(environ, start_response)

    return debug_app


def live_pids() -> list[int]:
    """Return the pids of this service's workers, this one first; forget dead sockets."""
    own = os.getpid()
    directory = socket_dir()
    pids = [own]
    if directory is None or not directory.is_dir() or _serving.get("pid") != own:
        return pids
    for path in sorted(directory.glob("*.sock")):
        if not path.stem.isdigit() or int(path.stem) == own:
            continue
        if _listening(path):
            pids.append(int(path.stem))
        else:
            path.unlink(missing_ok=True)
    return pids


def _listening(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True  # e.g. a full backlog: alive but busy
    finally:
        probe.close()
    return True


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str]


class WorkerGone(Exception):
    """The worker's socket is gone or refuses connections."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self._path))


def forward(pid: int, target: str, authorization: str, timeout: float) -> Reply:
    """Send ``GET target`` to worker ``pid`` and return its answer."""
    path = socket_path(pid)
    if path is None:
        raise WorkerGone(f"no worker sockets here, so pid {pid} cannot be reached")
    connection = _UnixConnection(path, timeout)
    try:
        connection.request("GET", target, headers={"Authorization": authorization})
        response = connection.getresponse()
        headers = dict(response.getheaders())
        content_type = response.getheader("Content-Type", "application/octet-stream")
        return Reply(response.status, content_type, response.read(), headers)
    except (ConnectionRefusedError, FileNotFoundError) as error:
        raise WorkerGone(f"worker {pid} is gone ({error.strerror})") from error
    except http.client.HTTPException as error:  # e.g. it died mid-answer
        raise WorkerGone(f"worker {pid} broke off its answer ({error!r})") from error
    finally:
        connection.close()


def gather(jobs: dict[int, Callable[[], T]]) -> dict[int, T | Exception]:
    """Run the jobs concurrently (greenlets), returning each result or its exception.

    A spawned greenlet starts with empty contextvars (no Flask request), so each job must
    get everything it needs as arguments.
    """

    def outcome(job: Callable[[], T]) -> T | Exception:
        try:
            return job()
        except Exception as error:  # noqa: BLE001 - reported per worker, not raised
            return error

    if len(jobs) == 1:
        return {pid: outcome(job) for pid, job in jobs.items()}
    import gevent

    greenlets = {pid: gevent.spawn(outcome, job) for pid, job in jobs.items()}
    gevent.joinall(list(greenlets.values()))
    return {pid: greenlet.value for pid, greenlet in greenlets.items()}


def describe(pids: Iterable[int]) -> str:
    return ", ".join(str(pid) for pid in pids)
