"""``/debug``: the Python counterpart of Go's net/http/pprof, for one worker or all of them.

Off (404) unless ``DEBUG_TOKEN`` is set; then every request needs
``Authorization: Bearer <DEBUG_TOKEN>``. Each endpoint answers for the worker that got the
request, for worker ``?pid=N``, or for every worker with ``?workers=all``.
"""

from __future__ import annotations

import hmac
import os
import sys
import threading
import time
from functools import partial

from flask import Blueprint, Flask, Response, abort, current_app, request

from observability import heap, targets, workers
from observability.cpu import CpuSampler
from observability.greenlets import greenlet_profile
from observability.stacks import StackProfile

MAX_PROFILE_SECONDS = 60
# Go's rate; the kernel's tick (often 250 Hz) caps what a higher one gets.
DEFAULT_HZ, MAX_HZ = 100, 1000
INDEX = """\
/debug/pprof/profile?seconds=10&hz=100&format=F  CPU of every greenlet (SIGPROF)
/debug/pprof/heap?format=F[&stop=1]              live memory by stack (tracemalloc)
/debug/pprof/allocs?format=F                     growth of live memory since the last call
/debug/pprof/goroutine?format=F                  greenlets and threads by stack
/debug/pprof/cmdline                             the worker's command line
F: speedscope (profile's default), text (the others'), collapsed, html, pprof, json
Add pid=N for one worker, or workers=all for all of them in one profile."""

bp = Blueprint("debug", __name__, url_prefix="/debug")
_profile_lock = threading.Lock()


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
    answered = f"shop /debug, answered by worker pid {os.getpid()}\nworkers: {pids}"
    return targets.text_response(f"{answered}\n\n{INDEX}")


@bp.get("/pprof/profile")
def profile() -> Response:
    """Sample the CPU for N seconds, whichever greenlet runs."""
    seconds = _integer("seconds", "10", MAX_PROFILE_SECONDS)
    hz = _integer("hz", str(DEFAULT_HZ), MAX_HZ)
    return targets.profiles("cpu", partial(cpu_profile, seconds, hz), "speedscope", seconds)


@bp.get("/pprof/heap")
def heap_endpoint() -> Response:
    """Show live memory by allocating stack; ``stop=1`` stops tracing."""
    if request.args.get("stop"):
        return targets.texts(_stop_tracing)
    return targets.profiles("heap", heap.heap_profile, "text", targets.HEAP_SECONDS)


@bp.get("/pprof/allocs")
def allocs() -> Response:
    """Show how live memory grew by stack since this worker's previous call."""
    return targets.profiles("allocs", heap.allocs_profile, "text", targets.HEAP_SECONDS)


@bp.get("/pprof/goroutine")
def goroutines() -> Response:
    """Count the greenlets and threads by stack."""
    return targets.profiles("goroutine", greenlet_profile, "text", 0)


@bp.get("/pprof/cmdline")
def cmdline() -> Response:
    """Show the command line the worker runs."""
    return targets.texts(lambda: " ".join(sys.argv))


def _integer(name: str, default: str, highest: int) -> int:
    value = request.args.get(name, default)
    if not value.isdigit() or not 1 <= int(value) <= highest:
        abort(400, description=f"{name} must be an integer from 1 to {highest}")
    return int(value)


def cpu_profile(seconds: int, hz: int = DEFAULT_HZ) -> StackProfile:
    """Profile this worker's CPU for ``seconds``; one profile at a time."""
    if not _profile_lock.acquire(blocking=False):
        raise targets.DebugError(409, f"a CPU profile is already running in worker {os.getpid()}")
    try:
        sampler = CpuSampler(hz)
        try:
            sampler.start()
        except ValueError as error:
            raise targets.DebugError(501, "CPU profiles need the worker's main thread") from error
        try:
            time.sleep(seconds)  # cooperative under gevent: the other greenlets run meanwhile
        finally:
            result = sampler.stop()
        return result
    finally:
        _profile_lock.release()


def _stop_tracing() -> str:
    heap.stop_tracing()
    return f"tracemalloc stopped in pid {os.getpid()}"


def init_app(app: Flask, debug_token: str | None) -> None:
    """Mount /debug; with a token, also serve it on this worker's private socket."""
    app.config["SHOP_DEBUG_TOKEN"] = debug_token
    app.register_blueprint(bp)
    if debug_token:
        workers.serve(app)
