"""Admission: how many API requests a worker serves at once, learnt from how long they wait.

A gevent worker shares one CPU among every request it has taken in. Past the CPU's capacity
each of them slows down with the next one admitted, until all end past their budget and
goodput collapses. So the worker admits at most ``limit`` API requests at a time and answers
the rest 503 at once, which costs a fraction of serving them.

The signal is the time requests waited between reaching the host and the worker reading them
(``shop.server.arrival``): how late the event loop runs. The limit starts at
``max_in_flight`` and adapts every ``INTERVAL`` (additive-multiplicative, as TCP's window):

- Shedding starts when, for ``SUSTAINED`` intervals in a row, the mean wait exceeded
  ``ONSET`` times the target with at least ``ONSET_IN_FLIGHT`` requests in flight. Near
  capacity, bursts and pauses make single late intervals, and a limit cut to the few
  requests a burst finds in flight would refuse the next burst of a load the worker can
  carry. And a loop late with few requests in flight is slowed by something else (another
  process, a profiler): refusing them would not make it faster. Past capacity, requests
  pile up in flight within a fraction of a second.
- While shedding (the limit below ``max_in_flight``), each interval whose mean wait exceeds
  ``target`` lowers the limit to three quarters of what was in use. An interval on time
  raises it by a quarter (at least one) if the limit refused requests, else by one. After
  ``QUIET`` intervals in a row without a refusal the load fits again: shedding stops and
  the limit is back at ``max_in_flight``.

``max_in_flight`` caps the limit. Requests parked behind a bulkhead (a locked row's slot,
the password hasher: ``parked``) leave the count while they wait; requests waiting on the
database use no CPU either, so the limit may grow past them, but not without bound. A request
that already waited more than ``max_wait`` is refused whatever the limit: its client has
waited long enough and its budget is mostly spent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

INTERVAL = 0.1
ONSET = 2.5
SUSTAINED = 5
ONSET_IN_FLIGHT = 16
DECREASE = 0.75
INCREASE = 0.25
MIN_LIMIT = 2
# Intervals in a row without a refusal after which shedding stops: the load fits again.
QUIET = 10


class Reason:
    """Why a request was refused: which resource is saturated (a metric label)."""

    EVENT_LOOP = "event_loop"  # the worker's CPU: its event loop runs late
    IN_FLIGHT = "in_flight"  # MAX_IN_FLIGHT requests in the worker, most of them waiting


class Admission:
    """One worker's admission control; its event loop is single-threaded: no locks."""

    def __init__(
        self,
        max_in_flight: int,
        target: float,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
        on_limit: Callable[[float], None] | None = None,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.target = target
        self.max_wait = max_wait
        self.limit = float(max_in_flight)
        self.in_flight = 0
        self._clock = clock
        self._on_limit = on_limit
        self._window_ends = clock() + INTERVAL
        self._waited = 0.0
        self._arrivals = 0
        self._peak = 0
        self._refused = False
        self._late_streak = 0
        self._quiet = 0

    @property
    def shedding(self) -> bool:
        """Whether the limit is below ``max_in_flight``: the worker is steering its load."""
        return self.limit < self.max_in_flight

    def admit(self, waited: float) -> str | None:
        """Take in a request that waited ``waited`` seconds; return None, or why not."""
        now = self._clock()
        if now >= self._window_ends:
            self._adjust(now)
        self._waited += waited
        self._arrivals += 1
        if waited > self.max_wait:
            return Reason.EVENT_LOOP
        if self.in_flight >= self.limit:
            self._refused = True
            return Reason.EVENT_LOOP if self.shedding else Reason.IN_FLIGHT
        self.in_flight += 1
        self._peak = max(self._peak, self.in_flight)
        return None

    def release(self) -> None:
        """Note that an admitted request has been answered."""
        self.in_flight -= 1

    @contextmanager
    def parked(self) -> Iterator[None]:
        """Leave the count while an admitted request waits without using CPU (shop/waits.py)."""
        self.in_flight -= 1
        try:
            yield
        finally:
            self.in_flight += 1

    def _adjust(self, now: float) -> None:
        mean = self._waited / self._arrivals if self._arrivals else 0.0
        before = self.limit
        if self.shedding:
            late = mean > self.target
        else:
            crowded = mean > self.target * ONSET and self._peak >= ONSET_IN_FLIGHT
            self._late_streak = self._late_streak + 1 if crowded else 0
            late = self._late_streak >= SUSTAINED
        self._quiet = 0 if self._refused else self._quiet + 1
        if late:
            self._late_streak = self._quiet = 0
            used = min(self.limit, max(self._peak, self.in_flight))
            self.limit = max(MIN_LIMIT, used * DECREASE)
        elif self._quiet >= QUIET:
            self.limit = float(self.max_in_flight)
        elif self.shedding:
            step = max(1.0, self.limit * INCREASE) if self._refused else 1.0
            self.limit = min(self.max_in_flight, self.limit + step)
        if self._on_limit is not None and self.limit != before:
            self._on_limit(self.limit)
        self._window_ends = now + INTERVAL
        self._waited, self._arrivals = 0.0, 0
        self._peak, self._refused = self.in_flight, False
