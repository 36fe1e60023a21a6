"""A per-worker bulkhead for hot rows: few requests per user may wait on that user's row.

A row held locked (a long transaction elsewhere, a stuck client) makes every request that
needs it wait for its lock while holding a pooled connection; enough of them would take
the whole pool and starve users who have nothing to do with that row. Requests first take
one of ``per_key`` slots for each user they will lock; the rest wait here, holding no
connection (and parked: not counted against the worker's admission, shop/waits.py), until
a slot frees or their deadline passes. Slots are handed over in arrival
order: with a plain semaphore a stream of newcomers (a password-guessing storm) could keep
overtaking one waiting request, the account's owner, until its budget ran out.

A waiter gives up a little before its deadline, at a random point of the budget's last fifth:
clients whose requests all wait out one budget come back together, and a worker then served
every one of them in a single burst each time, which delayed everyone else's requests.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from shop import waits


class HotRowTimeout(Exception):
    """No slot for a row came free within the request's time budget."""


class FairSlots:
    """A counting semaphore that serves waiters first come, first served."""

    def __init__(self, capacity: int) -> None:
        self._mutex = threading.Lock()  # gevent-patched in workers: cooperative
        self._free = capacity
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, timeout: float | None) -> bool:
        """Take a slot, waiting at most ``timeout`` seconds (None: for ever)."""
        with self._mutex:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        try:
            if waiter.acquire(timeout=-1 if timeout is None else timeout):
                return True
        except BaseException:  # interrupted: leave the queue, or pass on a slot handed over
            if not self._give_up(waiter):
                self.release()
            raise
        return not self._give_up(waiter)

    def _give_up(self, waiter: threading.Lock) -> bool:
        """Leave the queue; False if a release had already handed this waiter the slot."""
        with self._mutex:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                return True
        return False

    def release(self) -> None:
        """Give the slot to the longest waiter, or back to the pool of free slots."""
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._free += 1


class HotRows:
    """Slots per key, created on demand and dropped when nobody holds or waits."""

    def __init__(self, per_key: int) -> None:
        self._per_key = per_key
        self._lock = threading.Lock()
        self._slots: dict[str, tuple[FairSlots, int]] = {}

    @contextmanager
    def hold(self, keys: Iterable[str], deadline: float | None) -> Iterator[None]:
        """Hold a slot of every key until the block ends; wait at most until ``deadline``
        (``time.monotonic()``). Keys are taken in sorted order, so holders cannot deadlock."""
        held: list[str] = []
        try:
            for key in sorted(set(keys)):
                slots = self._join(key)
                try:
                    with waits.parked():
                        acquired = slots.acquire(_give_up_after(deadline))
                except BaseException:  # interrupted while waiting
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

    def _join(self, key: str) -> FairSlots:
        with self._lock:
            slots, users = self._slots.get(key) or (FairSlots(self._per_key), 0)
            self._slots[key] = (slots, users + 1)
            return slots

    def _leave(self, key: str) -> None:
        with self._lock:
            slots, users = self._slots[key]
            if users == 1:
                del self._slots[key]
            else:
                self._slots[key] = (slots, users - 1)

    def __len__(self) -> int:
        return len(self._slots)


# Waiters give up between 80% and 100% of the time left (see the module's docstring).
GIVE_UP_SPREAD = 0.2


def _give_up_after(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    left = max(0.0, deadline - time.monotonic())
    return left * (1 - GIVE_UP_SPREAD * random.random())  # noqa: S311 (jitter, not a secret)
