"""argon2id password hashing that does not freeze a gevent worker."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

from argon2 import PasswordHasher as Argon2
from argon2.exceptions import InvalidHashError, VerificationError
from opentelemetry import trace

from observability.metrics import PASSWORD_HASH_DURATION, PASSWORD_HASH_QUEUE
from shop import deadlines, waits
from shop.deadlines import DeadlineExceeded
from shop.domain.errors import TooManyLogins

tracer = trace.get_tracer("shop.security")
log = logging.getLogger(__name__)

T = TypeVar("T")


def run_inline(fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn`` in the current thread."""
    return fn(*args)


def offload_for_runtime(nice: int = 0, threads: int = 1) -> Callable[..., Any]:
    """Pick where slow hashes run: a gevent thread pool of their own once gevent has patched
    the process, else inline.

    argon2-cffi releases the GIL while hashing, so a pool thread hashes on the other core
    while the worker's event loop keeps serving other requests. The pool is not the hub's:
    that one also resolves host names (new database connections), which must not wait
    behind hashes. With ``nice`` > 0 its threads hash that much below the worker's own
    priority (Linux, per thread), so in a login storm the event loops get the CPU first and
    logins take what is left.
    """
    from gevent import monkey

    if nice and sys.platform != "linux":
        log.warning("PASSWORD_HASH_NICE is ignored: per-thread priorities need Linux")
    if not monkey.is_module_patched("socket"):
        return run_inline
    from gevent.threadpool import ThreadPool

    pool = ThreadPool(maxsize=threads)
    if nice and sys.platform == "linux":
        target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice)  # 0: the calling thread
        task: Callable[..., Any] = partial(_at_priority, target)
    else:
        task = run_inline

    def run_in_pool(fn: Callable[..., T], *args: Any) -> T:
        result: T = pool.apply(task, (fn, *args))
        return result

    return run_in_pool


_priority_failed = False


def _at_priority(target: int, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` in this pool thread, lowered to niceness ``target`` first if need be.

    The pool's threads only ever hash, so a thread lowered once stays lowered. If the
    kernel refuses (it should not: lowering one's own priority needs no privilege), the
    hash runs at the thread's current priority and the refusal is logged once.
    """
    global _priority_failed
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < target:
            os.setpriority(os.PRIO_PROCESS, tid, target)
    except OSError as error:
        if not _priority_failed:
            _priority_failed = True
            log.warning("could not lower the priority of a hashing thread: %s", error)
    return fn(*args)


class Argon2Hasher:
    """argon2id with explicit cost parameters (OWASP: 19 MiB, 2 passes, 1 lane).

    At most ``concurrency`` hashes run at once and at most ``queue`` more wait; beyond
    that a login is refused at once (TooManyLogins, a 429). In a login storm the hashes
    then take at most ``concurrency`` cores per worker, and the worker's other requests
    keep theirs, instead of every request queueing behind a pile of ~20 ms hashes.
    """

    def __init__(
        self,
        time_cost: int,
        memory_kib: int,
        offload: Callable[..., Any] = run_inline,
        concurrency: int = 1,
        queue: int = 32,
    ) -> None:
        self._argon2 = Argon2(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        self._offload = offload
        self._slots = threading.BoundedSemaphore(concurrency)
        self._admission = threading.Lock()
        self._admitted = 0
        self._limit = concurrency + queue

    def hash(self, password: str) -> str:
        digest: str = self._timed("hash", self._argon2.hash, password)
        return digest

    def verify(self, password_hash: str, password: str) -> bool:
        ok: bool = self._timed("verify", self._matches, password_hash, password)
        return ok

    def _matches(self, password_hash: str, password: str) -> bool:
        # Caught here, in the pool thread: gevent prints exceptions that escape a pool task.
        try:
            return self._argon2.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _timed(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        self._admit()
        try:
            # The span opens in the calling greenlet: the pool thread has no trace context.
            # Parked: the hash runs in a pool thread, not on the event loop (shop/waits.py).
            with (
                tracer.start_as_current_span(f"password.{operation}"),
                waits.parked(),
                self._slot(),
            ):
                started = time.perf_counter()
                try:
                    result: T = self._offload(fn, *args)
                finally:
                    elapsed = time.perf_counter() - started
                    PASSWORD_HASH_DURATION.labels(operation).observe(elapsed)
                return result
        finally:
            with self._admission:
                self._admitted -= 1
                PASSWORD_HASH_QUEUE.dec()

    @contextmanager
    def _slot(self) -> Iterator[None]:
        """Wait for a hashing slot, at most for what is left of the request's budget."""
        if not self._slots.acquire(timeout=deadlines.remaining()):
            raise DeadlineExceeded("no password-hash slot came free within the time budget")
        try:
            yield
        finally:
            self._slots.release()

    def _admit(self) -> None:
        with self._admission:
            if self._admitted >= self._limit:
                raise TooManyLogins("too many logins in progress, retry shortly")
            self._admitted += 1
            PASSWORD_HASH_QUEUE.inc()

    def needs_rehash(self, password_hash: str) -> bool:
        return self._argon2.check_needs_rehash(password_hash)
