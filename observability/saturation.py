"""Requests refused because a resource of the service, not the database, is saturated.

Each refusal is counted (``shop_unavailable_responses_total{reason}``); the log gets one
``server saturated`` line per second of refusals with the counts by reason, not a line per
refusal: under overload that line would cost the CPU that is short. The reasons name what
is full, so an operator looks at the right thing (docs/runbooks/saturated.md).
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import structlog

from observability import metrics

# The worker's CPU (its event loop runs late), its in-flight cap, its connection pool.
REASONS = ("event_loop", "in_flight", "pool_exhausted")
LOG_EVERY_SECONDS = 1.0

log = structlog.get_logger("shop.saturation")
_pending: Counter[str] = Counter()
_reporter: threading.Thread | None = None


def refused(reason: str) -> None:
    """Count one request refused for ``reason``; the log reports it within a second."""
    metrics.record_unavailable(reason)
    _pending[reason] += 1
    _ensure_reporter()


def report() -> dict[str, int]:
    """Log the refusals counted since the last report, if any; return them."""
    counts = dict(_pending)
    _pending.clear()
    if counts:
        log.warning("server saturated", refused=counts, total=sum(counts.values()))
    return counts


def _ensure_reporter() -> None:
    global _reporter
    if _reporter is None or not _reporter.is_alive():  # none yet, or this is a forked child
        _reporter = threading.Thread(target=_report_forever, name="saturation-log", daemon=True)
        _reporter.start()


def _report_forever() -> None:
    # Under gevent, threading is patched: a greenlet that sleeps cooperatively.
    while True:
        time.sleep(LOG_EVERY_SECONDS)
        report()
