"""Per-worker process metrics, sampled in the background.

prometheus_client's process collector does not work in multiprocess mode, so each
worker reports its own CPU time (as a counter, summed over workers) and memory, and
probes how late its event loop runs.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from typing import TYPE_CHECKING

from observability import metrics

if TYPE_CHECKING:
    from observability.config import ObservabilitySettings

SAMPLE_EVERY_SECONDS = 5.0
PROBE_EVERY_SECONDS = 0.1
# The worst lag is kept for one window and shown through the next, so a scrape every 15 s
# sees every stall at least once.
LAG_WINDOW_SECONDS = 15.0
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

_probing_pid: int | None = None


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


def start_sampling(settings: ObservabilitySettings) -> None:
    """Count this worker's start, publish its configuration, sample it in the background."""
    metrics.WORKER_STARTS.inc()
    metrics.WORKERS.inc()
    metrics.WORKERS_CONFIGURED.set(settings.web_concurrency)
    metrics.PASSWORD_HASH_QUEUE_CAPACITY.set(
        settings.password_hash_concurrency + settings.password_hash_queue
    )
    # Under gevent, threading is patched: these loops are greenlets that sleep cooperatively.
    threading.Thread(target=_sample_forever, name="process-metrics", daemon=True).start()
    start_lag_probe()


def start_lag_probe() -> None:
    """Start this process's event-loop probe, once per process."""
    global _probing_pid
    if _probing_pid == os.getpid():
        return
    _probing_pid = os.getpid()
    threading.Thread(target=_probe_forever, name="event-loop-probe", daemon=True).start()


def _sample_forever() -> None:
    reported = 0.0
    while True:
        reported = sample_once(reported)
        time.sleep(SAMPLE_EVERY_SECONDS)


def sample_once(reported_cpu: float) -> float:
    """Publish CPU used since ``reported_cpu`` and current memory; return the new CPU total."""
    used = cpu_seconds()
    metrics.PROCESS_CPU.inc(max(0.0, used - reported_cpu))
    if os.path.exists("/proc/self/statm"):
        metrics.PROCESS_MEMORY.set(resident_bytes())
    return used


def _probe_forever() -> None:
    window = LagWindow(time.monotonic())
    published = -1.0
    while True:
        due = time.monotonic() + PROBE_EVERY_SECONDS
        time.sleep(PROBE_EVERY_SECONDS)
        now = time.monotonic()
        lag = max(0.0, now - due)
        metrics.EVENT_LOOP_LAG.observe(lag)
        worst = window.add(lag, now)
        if worst != published:  # a gauge write per change, not per wake-up
            metrics.EVENT_LOOP_LAG_MAX.set(worst)
            published = worst


class LagWindow:
    """The worst lag of the current window and the one before it."""

    def __init__(self, started: float) -> None:
        self._started = started
        self._current = 0.0
        self._previous = 0.0

    def add(self, lag: float, now: float) -> float:
        """Take one lag measured at ``now``; return the worst of the last one or two windows."""
        elapsed = now - self._started
        if elapsed >= LAG_WINDOW_SECONDS:
            # After a stall longer than a window, the window before this one is stale.
            self._previous = self._current if elapsed < 2 * LAG_WINDOW_SECONDS else 0.0
            self._current = 0.0
            self._started = now
        self._current = max(self._current, lag)
        return max(self._previous, self._current)
