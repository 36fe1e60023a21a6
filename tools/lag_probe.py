"""The shop's WSGI app plus a greenlet that measures how late the event loop wakes it.

For tools/trace_overhead.py only: every 5 ms the probe sleeps and notes how much later
than asked it woke; once a second it appends the worst delay of that second to
``$LAG_PROBE_FILE`` as a JSON line. A late wake-up means something held the loop.
"""

from __future__ import annotations

import json
import os
import time

import gevent

from shop.wsgi import app

INTERVAL = 0.005


def _probe(path: str) -> None:
    worst, second = 0.0, time.time()
    with open(path, "a") as out:
        while True:
            asked = time.perf_counter()
            gevent.sleep(INTERVAL)
            worst = max(worst, time.perf_counter() - asked - INTERVAL)
            if time.time() - second >= 1:
                out.write(json.dumps({"t": time.time(), "max_ms": worst * 1000}) + "\n")
                out.flush()
                worst, second = 0.0, time.time()


gevent.spawn(_probe, os.environ["LAG_PROBE_FILE"])

__all__ = ["app"]
