"""A per-worker bulkhead for hot rows: few requests per user may wait on that user's row.

A row held locked (a long transaction elsewhere, a stuck client) makes every request that
needs it wait for its lock while holding a pooled connection; enough of them would take
the whole pool and starve users who have nothing to do with that row. Requests first take
one of ``per_key`` slots for each user they will lock; the rest wait here, holding no
connection, until a slot frees or their deadline passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


class HotRowTimeout(Exception):
    """No slot for a row came free within the request's time budget."""


class HotRows:
    """Counted slots per key, created on demand and dropped when nobody holds or waits."""

    def __init__(self, per_key: int) -> None:
        self._per_key = per_key
        self._lock = threading.Lock()  # gevent-patched in workers: cooperative
        self._slots: dict[str, tuple[threading.Semaphore, int]] = {}

    @contextmanager
    def hold(self, keys: Iterable[str], deadline: float | None) -> Iterator[None]:
        """Hold a slot of every key until the block ends; wait at most until ``deadline``
        (``time.monotonic()``). Keys are taken in sorted order, so holders cannot deadlock."""
        held: list[str] = []
        try:
            for key in sorted(set(keys)):
                semaphore = self._join(key)
                try:
                    acquired = semaphore.acquire(timeout=_seconds_until(deadline))
                except BaseException:  # interrupted while waiting (a request deadline)
                    self._leave(key)
                    raise
                if not acquired:
                    self._leave(key)
                    raise HotRowTimeout(key)
                held.append(key)
            yield
        finally:
            for key in reversed(held):
                self._slots[key][0].release()
                self._leave(key)

    def _join(self, key: str) -> threading.Semaphore:
        with self._lock:
            semaphore, users = self._slots.get(key) or (threading.Semaphore(self._per_key), 0)
            self._slots[key] = (semaphore, users + 1)
            return semaphore

    def _leave(self, key: str) -> None:
        with self._lock:
            semaphore, users = self._slots[key]
            if users == 1:
                del self._slots[key]
            else:
                self._slots[key] = (semaphore, users - 1)

    def __len__(self) -> int:
        return len(self._slots)


def _seconds_until(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())
