"""Per-worker process metrics, sampled in the background.

prometheus_client's process collector does not work in multiprocess mode, so each
worker reports its own CPU time (as a counter, summed over workers) and memory.
"""

from __future__ import annotations

import os
import resource
import threading
import time

from observability import metrics

SAMPLE_EVERY_SECONDS = 5.0
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


def start_sampling() -> None:
    """Count this worker's start and report its CPU and memory every few seconds."""
    metrics.WORKER_STARTS.inc()
    metrics.WORKERS.inc()
    # Under gevent, threading is patched: this loop is a greenlet that sleeps cooperatively.
    threading.Thread(target=_sample_forever, name="process-metrics", daemon=True).start()


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
