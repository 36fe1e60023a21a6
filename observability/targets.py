"""Answer a /debug call for this worker, for worker ``?pid=N`` or for ``?workers=all``.

``pid=N`` is forwarded as is to worker N's socket, which answers it itself. ``workers=all``
runs this worker's share here and asks every other worker for its share as JSON,
concurrently; the profiles are merged with each worker's stacks rooted under ``pid N``, and
a worker that could not answer is named in the ``X-Missing-Pids`` header and a comment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import partial
from typing import NoReturn, TypeVar
from urllib.parse import urlencode

from flask import Response, abort, request

from observability import flamegraph, pprof, workers
from observability.stacks import StackProfile, merge

FORWARD_MARGIN_SECONDS = 15
HEAP_SECONDS = 45  # a snapshot of a big heap takes a while
FORMATS = {
    "speedscope": "application/json",
    "collapsed": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pprof": "application/octet-stream",
    "text": "text/plain; charset=utf-8",
    "json": "application/json",
}
T = TypeVar("T")


class DebugError(Exception):
    """A /debug call that cannot be answered, with the status to answer instead."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def profiles(kind: str, local: Callable[[], StackProfile], default: str, seconds: int) -> Response:
    """Answer with a profile in the asked format; ``seconds`` is how long it takes."""
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


def texts(local: Callable[[], str]) -> Response:
    """Answer with ``local()``'s text, or every worker's text in sections by pid."""
    pid, everyone = _target()
    if pid is not None:
        return _forwarded(pid, FORWARD_MARGIN_SECONDS)
    if not everyone:
        return text_response(_run(local))
    remote = partial(_remote_text, _peer_target(), _authorization(), FORWARD_MARGIN_SECONDS)
    outcomes = workers.gather(_jobs(local, remote))
    parts = [f"=== pid {p} ===\n{outcome}" for p, outcome in sorted(outcomes.items())]
    return text_response("\n".join(parts))


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


def text_response(body: str) -> Response:
    return Response(body + "\n", mimetype="text/plain")
