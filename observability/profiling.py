"""``/debug``: the Python counterpart of Go's net/http/pprof, for the worker that answers.

Off (404) unless ``DEBUG_TOKEN`` is set; then every request needs
``Authorization: Bearer <DEBUG_TOKEN>``.
"""

from __future__ import annotations

import hmac
import os
import sys
import threading
import time
import traceback
import tracemalloc
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request

from observability.flamegraph import collapsed_stacks

MAX_PROFILE_SECONDS = 60
HEAP_TOP = 30
FORMATS = {
    "speedscope": "application/json",
    "collapsed": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
}

bp = Blueprint("debug", __name__, url_prefix="/debug")
_profile_lock = threading.Lock()
_heap: dict[str, Any] = {}


class DebugRefused(Exception):
    """The caller may not use /debug."""


@bp.before_request
def _authorize() -> None:
    expected = current_app.config.get("SHOP_DEBUG_TOKEN")
    if not expected:
        abort(404)
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").encode()
    if not hmac.compare_digest(given, expected.encode()):
        abort(401, description="debug endpoints need Authorization: Bearer <DEBUG_TOKEN>")


@bp.get("/pprof/")
def index() -> Response:
    """List the endpoints and say which worker answered."""
    lines = [
        f"shop /debug, answered by worker pid {os.getpid()}",
        "",
        "/debug/pprof/profile?seconds=N&format=speedscope|collapsed|html  CPU, all greenlets",
        "/debug/pprof/heap[?stop=1]  top allocations (tracemalloc; diff since the previous call)",
        "/debug/pprof/goroutine  stacks of every greenlet and thread",
    ]
    return _text("\n".join(lines))


@bp.get("/pprof/profile")
def profile() -> Response:
    """Sample this worker's CPU for N seconds, whichever greenlet runs."""
    seconds = request.args.get("seconds", "10")
    fmt = request.args.get("format", "speedscope")
    if not seconds.isdigit() or not 1 <= int(seconds) <= MAX_PROFILE_SECONDS:
        abort(400, description=f"seconds must be an integer from 1 to {MAX_PROFILE_SECONDS}")
    if fmt not in FORMATS:
        abort(400, description="format must be one of: " + ", ".join(FORMATS))
    if not _profile_lock.acquire(blocking=False):
        abort(409, description="a profile is already running in this worker")
    try:
        session = _sample(int(seconds))
    finally:
        _profile_lock.release()
    response = Response(_render(session, fmt), mimetype=FORMATS[fmt])
    response.headers["X-Profiled-Pid"] = str(os.getpid())
    return response


def _sample(seconds: int) -> Any:
    from pyinstrument import Profiler

    # "disabled" records whatever greenlet is on the CPU; the default follows only this one.
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    time.sleep(seconds)  # cooperative under gevent: the other greenlets run meanwhile
    return profiler.stop()


def _render(session: Any, fmt: str) -> str:
    from pyinstrument.renderers import HTMLRenderer, SpeedscopeRenderer

    if fmt == "collapsed":
        return collapsed_stacks(session.root_frame())
    renderer = SpeedscopeRenderer() if fmt == "speedscope" else HTMLRenderer()
    text: str = renderer.render(session)
    return text


@bp.get("/pprof/heap")
def heap() -> Response:
    """Show the allocations that grew most since the previous call."""
    if request.args.get("stop"):
        tracemalloc.stop()
        _heap.clear()
        return _text("tracemalloc stopped")
    if not tracemalloc.is_tracing():
        tracemalloc.start(10)
        _heap["snapshot"] = tracemalloc.take_snapshot()
        return _text(f"tracemalloc started in pid {os.getpid()}; call again to see what grew")
    snapshot = tracemalloc.take_snapshot()
    growth = snapshot.compare_to(_heap["snapshot"], "lineno")[:HEAP_TOP]
    _heap["snapshot"] = snapshot
    current, peak = tracemalloc.get_traced_memory()
    header = f"pid {os.getpid()}: traced {current / 2**20:.1f} MiB (peak {peak / 2**20:.1f} MiB)"
    return _text("\n".join([header, "growth since the previous call:", *map(str, growth)]))


@bp.get("/pprof/goroutine")
def goroutines() -> Response:
    """Dump the stack of every greenlet and OS thread in this worker."""
    from gevent.util import format_run_info

    lines = [f"pid {os.getpid()}", *format_run_info()]
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        lines.append(f"\n--- thread {names.get(ident, ident)} ---")
        lines.extend(traceback.format_stack(frame))
    return _text("\n".join(lines))


def _text(body: str) -> Response:
    return Response(body + "\n", mimetype="text/plain")


def init_app(app: Flask, debug_token: str | None) -> None:
    """Mount /debug; without a token its guard answers 404 to everything."""
    app.config["SHOP_DEBUG_TOKEN"] = debug_token
    app.register_blueprint(bp)
