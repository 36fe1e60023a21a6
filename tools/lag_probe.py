"""The shop's WSGI app plus a greenlet that measures how late the event loop wakes it.

For tools/trace_overhead.py only: every 5 ms the probe sleeps and notes how much later
than asked it woke; once a second it appends the worst delay of that second and how many
wake-ups were more than 5 and 10 ms late to ``$LAG_PROBE_FILE`` as a JSON line. A late
wake-up means something held the loop (or the OS did not run the process).
"""

from __future__ import annotations

import json
import os
import time

import gevent

from shop.wsgi import app

INTERVAL = 0.005


def _probe(path: str) -> None:
    worst, over_5, over_10, second = 0.0, 0, 0, time.time()
    with open(path, "a") as out:
        while True:
            asked = time.perf_counter()
            gevent.sleep(INTERVAL)
            late = time.perf_counter() - asked - INTERVAL
            worst = max(worst, late)
            over_5 += late > 0.005
            over_10 += late > 0.010
            if time.time() - second >= 1:
                entry = {"t": time.time(), "max_ms": worst * 1000, "over_5": over_5}
                out.write(json.dumps({**entry, "over_10": over_10}) + "\n")
                out.flush()
                worst, over_5, over_10, second = 0.0, 0, 0, time.time()


gevent.spawn(_probe, os.environ["LAG_PROBE_FILE"])

__all__ = ["app"]
