"""``/debug``: the Python counterpart of Go's net/http/pprof, for one worker or all of them.

Off (404) unless ``DEBUG_TOKEN`` is set; then every request needs
``Authorization: Bearer <DEBUG_TOKEN>``. Each endpoint answers for the worker that got the
request, for worker ``?pid=N``, or for every worker with ``?workers=all``.
"""

from __future__ import annotations

import hmac
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from functools import partial
from typing import NoReturn, TypeVar
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, abort, current_app, request

from observability import flamegraph, heap, pprof, workers
from observability.cpu import CpuSampler
from observability.stacks import StackProfile, merge

MAX_PROFILE_SECONDS = 60
# Go's rate; the kernel's tick (often 250 Hz) caps what a higher one gets.
DEFAULT_HZ, MAX_HZ = 100, 1000
FORWARD_MARGIN_SECONDS = 15
FORMATS = {
    "speedscope": "application/json",
    "collapsed": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pprof": "application/octet-stream",
    "text": "text/plain; charset=utf-8",
    "json": "application/json",
}
INDEX = """\
/debug/pprof/profile?seconds=10&hz=100&format=F  CPU of every greenlet (SIGPROF)
/debug/pprof/heap?format=F[&stop=1]              live memory by stack (tracemalloc)
/debug/pprof/allocs?format=F                     growth of live memory since the last call
/debug/pprof/goroutine                           stacks of every greenlet and thread
/debug/pprof/cmdline                             the worker's command line
F: speedscope (profile's default), text (heap's), collapsed, html, pprof, json
Add pid=N for one worker, or workers=all for all of them in one profile."""

T = TypeVar("T")
bp = Blueprint("debug", __name__, url_prefix="/debug")
_profile_lock = threading.Lock()


class DebugError(Exception):
    """A /debug call that cannot be answered, with the status to answer instead."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@bp.before_request
def _authorize() -> None:
    expected = current_app.config.get("SHOP_DEBUG_TOKEN")
    if not expected:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # compare_digest: the time taken does not tell how much of the token was right.
    if not hmac.compare_digest(given.encode(), expected.encode()) or scheme.lower() != "bearer":
        abort(401, description="debug endpoints need Authorization: Bearer <DEBUG_TOKEN>")


@bp.get("/pprof/")
def index() -> Response:
    """List the endpoints, the worker that answered and the live workers."""
    pids = workers.describe(workers.live_pids())
    return _text(f"shop /debug, answered by worker pid {os.getpid()}\nworkers: {pids}\n\n{INDEX}")


@bp.get("/pprof/profile")
def profile() -> Response:
    """Sample the CPU for N seconds, whichever greenlet runs."""
    seconds = _integer("seconds", "10", MAX_PROFILE_SECONDS)
    hz = _integer("hz", str(DEFAULT_HZ), MAX_HZ)
    return _profiles("cpu", partial(cpu_profile, seconds, hz), "speedscope", seconds)


@bp.get("/pprof/heap")
def heap_endpoint() -> Response:
    """Show live memory by allocating stack; ``stop=1`` stops tracing."""
    if request.args.get("stop"):
        return _texts(_stop_tracing)
    return _profiles("heap", heap.heap_profile, "text", 0)


@bp.get("/pprof/allocs")
def allocs() -> Response:
    """Show how live memory grew by stack since this worker's previous call."""
    return _profiles("allocs", heap.allocs_profile, "text", 0)


@bp.get("/pprof/goroutine")
def goroutines() -> Response:
    """Dump the stack of every greenlet and OS thread."""
    return _texts(_goroutines)


@bp.get("/pprof/cmdline")
def cmdline() -> Response:
    """Show the command line the worker runs."""
    return _texts(lambda: " ".join(sys.argv))


def _integer(name: str, default: str, highest: int) -> int:
    value = request.args.get(name, default)
    if not value.isdigit() or not 1 <= int(value) <= highest:
        abort(400, description=f"{name} must be an integer from 1 to {highest}")
    return int(value)


def cpu_profile(seconds: int, hz: int = DEFAULT_HZ) -> StackProfile:
    """Profile this worker's CPU for ``seconds``; one profile at a time."""
    if not _profile_lock.acquire(blocking=False):
        raise DebugError(409, f"a CPU profile is already running in worker {os.getpid()}")
    try:
        sampler = CpuSampler(hz)
        try:
            sampler.start()
        except ValueError as error:
            raise DebugError(501, "CPU profiles need the worker's main thread") from error
        try:
            time.sleep(seconds)  # cooperative under gevent: the other greenlets run meanwhile
        finally:
            result = sampler.stop()
        return result
    finally:
        _profile_lock.release()


def _profiles(kind: str, local: Callable[[], StackProfile], default: str, seconds: int) -> Response:
    fmt = request.args.get("format", default)
    if fmt not in FORMATS:
        abort(400, description="format must be one of: " + ", ".join(FORMATS))
    pid, everyone = _target()
    timeout = seconds + FORWARD_MARGIN_SECONDS
    if pid is not None:
        return _forwarded(pid, timeout)
    if not everyone:
        return _rendered(_run(local), kind, fmt, [os.getpid()])
    remote = partial(_remote_profile, _peer_target(format="json"), _authorization(), timeout)
    outcomes = workers.gather(_jobs(local, remote))
    found = {p: o for p, o in outcomes.items() if isinstance(o, StackProfile)}
    failed = {p: o for p, o in outcomes.items() if not isinstance(o, StackProfile)}
    if not found:
        _abort_for(failed)
    merged = merge([found[p].rooted(f"pid {p}") for p in sorted(found)])
    merged.comments += [f"pid {p}: left out: {error}" for p, error in failed.items()]
    response = _rendered(merged, kind, fmt, sorted(found))
    if failed:
        response.headers["X-Missing-Pids"] = workers.describe(sorted(failed))
    return response


def _texts(local: Callable[[], str]) -> Response:
    pid, everyone = _target()
    if pid is not None:
        return _forwarded(pid, FORWARD_MARGIN_SECONDS)
    if not everyone:
        return _text(_run(local))
    remote = partial(_remote_text, _peer_target(), _authorization(), FORWARD_MARGIN_SECONDS)
    outcomes = workers.gather(_jobs(local, remote))
    parts = [f"=== pid {p} ===\n{outcome}" for p, outcome in sorted(outcomes.items())]
    return _text("\n".join(parts))


def _target() -> tuple[int | None, bool]:
    """Return (pid to forward to, whether every worker is asked) from the query."""
    pid, everyone = request.args.get("pid"), request.args.get("workers")
    if everyone not in (None, "all"):
        abort(400, description="workers must be 'all'")
    if pid is None:
        return None, everyone == "all"
    if everyone or not pid.isdigit():
        abort(400, description="pid must be a worker's pid, and not combined with workers")
    live = workers.live_pids()
    if int(pid) not in live:
        abort(404, description=f"no live worker {pid}; workers: {workers.describe(live)}")
    return (None if int(pid) == os.getpid() else int(pid)), False


def _jobs(local: Callable[[], T], remote: Callable[[int], T]) -> dict[int, Callable[[], T]]:
    pids = workers.live_pids()
    return {pid: local if pid == os.getpid() else partial(remote, pid) for pid in pids}


def _peer_target(**changes: str) -> str:
    """Return this request's path and query for a peer: no ``workers``, with ``changes``."""
    args = {k: v for k, v in request.args.items() if k != "workers"} | changes
    return f"{request.path}?{urlencode(args)}"


def _authorization() -> str:
    return request.headers.get("Authorization", "")


def _forwarded(pid: int, timeout: float) -> Response:
    try:
        reply = workers.forward(pid, request.full_path, _authorization(), timeout)
    except (workers.WorkerGone, OSError) as error:
        abort(502, description=f"worker {pid} did not answer: {error}")
    response = Response(reply.body, status=reply.status, content_type=reply.content_type)
    for name in ("X-Profiled-Pid", "Content-Disposition"):
        if name in reply.headers:
            response.headers[name] = reply.headers[name]
    return response


def _remote_profile(target: str, authorization: str, timeout: float, pid: int) -> StackProfile:
    reply = _remote(pid, target, authorization, timeout)
    return StackProfile.from_json(json.loads(reply))


def _remote_text(target: str, authorization: str, timeout: float, pid: int) -> str:
    return _remote(pid, target, authorization, timeout).decode()


def _remote(pid: int, target: str, authorization: str, timeout: float) -> bytes:
    target = f"{target}{'&' if '?' in target else '?'}pid={pid}"
    reply = workers.forward(pid, target, authorization, timeout)
    if reply.status != 200:
        raise DebugError(reply.status, _error_text(reply.body))
    return reply.body


def _error_text(body: bytes) -> str:
    try:
        return str(json.loads(body)["errors"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace")[:200]


def _run(local: Callable[[], T]) -> T:
    try:
        return local()
    except DebugError as error:
        abort(error.status, description=str(error))


def _abort_for(failed: dict[int, Exception]) -> NoReturn:
    statuses = {e.status if isinstance(e, DebugError) else 502 for e in failed.values()}
    status = statuses.pop() if len(statuses) == 1 else 502
    abort(status, description="; ".join(f"pid {p}: {e}" for p, e in sorted(failed.items())))


def _rendered(result: StackProfile, kind: str, fmt: str, pids: list[int]) -> Response:
    title = f"shop {kind} profile, pid {workers.describe(pids)}"
    renderers: dict[str, Callable[[], str | bytes]] = {
        "speedscope": lambda: flamegraph.speedscope(result, title),
        "collapsed": lambda: flamegraph.collapsed(result),
        "html": lambda: flamegraph.html_page(result, title),
        "pprof": lambda: pprof.encode(result),
        "text": lambda: flamegraph.text(result),
        "json": lambda: json.dumps(result.to_json()),
    }
    response = Response(renderers[fmt](), content_type=FORMATS[fmt])
    response.headers["X-Profiled-Pid"] = ",".join(str(pid) for pid in pids)
    if fmt == "pprof":
        response.headers["Content-Disposition"] = f"attachment; filename={kind}.pb.gz"
    return response


def _stop_tracing() -> str:
    heap.stop_tracing()
    return f"tracemalloc stopped in pid {os.getpid()}"


def _goroutines() -> str:
    from gevent.util import format_run_info

    lines = [f"pid {os.getpid()}", *format_run_info()]
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        lines.append(f"\n--- thread {names.get(ident, ident)} ---")
        lines.extend(traceback.format_stack(frame))
    return "\n".join(lines)


def _text(body: str) -> Response:
    return Response(body + "\n", mimetype="text/plain")


def init_app(app: Flask, debug_token: str | None) -> None:
    """Mount /debug; with a token, also serve it on this worker's private socket."""
    app.config["SHOP_DEBUG_TOKEN"] = debug_token
    app.register_blueprint(bp)
    if debug_token:
        workers.serve(app)
