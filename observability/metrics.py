"""Prometheus metrics: RED per route, database health, saturation, workers and the build.

Under gunicorn, ``PROMETHEUS_MULTIPROC_DIR`` is set (by the gunicorn config) before this
module is imported, so every worker writes its samples to files and ``/metrics``
(``observability.scrape``) sums them; counters of dead workers stay in the files and
survive restarts.
"""

from __future__ import annotations

import os

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.engine import Engine

from observability.compat import use_multiprocess_values

_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


def _cached_pid() -> int:
    return _pid


# In multiprocess mode every update of a value asks for the pid, to notice a fork; the
# getpid system call was most of a counter increment's cost, ten times per request. The
# pid is cached instead and refreshed in every child right after a fork.
os.register_at_fork(after_in_child=_forked)
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    use_multiprocess_values(_cached_pid)

# An exact 0.05 s edge, so the latency SLI (share of requests under 50 ms) is a plain bucket.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

HTTP_DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Duration of HTTP server requests.",
    ["http_request_method", "http_route", "http_response_status_code"],
    buckets=LATENCY_BUCKETS,
)
# Observed for API requests, admitted (when the app starts on them) or refused at the door
# (shop/server/worker.py). The wait is invisible to a clock the app starts itself.
REQUEST_QUEUE = Histogram(
    "shop_request_queue_seconds",
    "Time an API request waited between reaching the host and the worker starting on it "
    "(listen backlog, socket buffer, event loop), by outcome: admitted or refused.",
    ["outcome"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
ADMISSION_LIMIT = Gauge(
    "shop_admission_limit",
    "API requests each live worker admits at once right now (learnt from event-loop waits;"
    " at most MAX_IN_FLIGHT).",
    multiprocess_mode="liveall",
)
REFUSAL_CPU = Counter(
    "shop_admission_refusal_cpu_seconds",
    "CPU the workers spent on requests they refused at the door, from reading each request "
    "to writing its 503 (the event loop's wake-up for it not included).",
)
HTTP_ACTIVE = Gauge(
    "http_server_active_requests",
    "HTTP requests being served right now.",
    multiprocess_mode="livesum",
)

PASSWORD_HASH_DURATION = Histogram(
    "shop_password_hash_duration_seconds",
    "Time to hash or verify one password (argon2id).",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)

# Per worker (label pid): each worker has its own pool, and one saturated worker must not
# look half busy in a sum over two.
DB_POOL_SIZE = Gauge(
    "shop_db_pool_size",
    "Configured pooled connections of each live worker.",
    multiprocess_mode="liveall",
)
DB_POOL_CHECKED_OUT = Gauge(
    "shop_db_pool_checked_out",
    "Pooled connections each live worker has lent out right now.",
    multiprocess_mode="liveall",
)
DB_TRANSACTION_DURATION = Histogram(
    "shop_db_transaction_duration_seconds",
    "Database work of one unit of work: a write transaction from BEGIN to COMMIT or "
    "ROLLBACK, or a read-only unit's statement.",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)
# Observed at every checkout (db/unit_of_work.py); DB_POOL_TIMEOUT and the request's
# budget bound the wait.
DB_POOL_WAIT = Histogram(
    "shop_db_pool_wait_seconds",
    "Time a request waited for a pooled connection (connecting included).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DB_RETRIES = Counter(
    "shop_db_retries", "Units of work retried after a transient database error.", ["reason"]
)
UNAVAILABLE = Counter(
    "shop_unavailable_responses",
    "Requests answered 503, by cause: the database could not serve them in time, or the "
    "service was saturated (event_loop, in_flight, pool_exhausted).",
    ["reason"],
)
DB_CONNECTION_ERRORS = Counter(
    "shop_db_connection_errors", "Failed connection attempts and connections lost mid-use."
)

WORKER_STARTS = Counter("shop_worker_starts", "Worker processes started (restarts included).")
WORKERS = Gauge("shop_workers", "Worker processes alive.", multiprocess_mode="livesum")
WORKERS_CONFIGURED = Gauge(
    "shop_workers_configured",
    "Worker processes the service is configured to run (WEB_CONCURRENCY).",
    multiprocess_mode="livemax",
)
PROCESS_CPU = Counter("shop_process_cpu_seconds", "CPU time used by worker processes.")
PROCESS_MEMORY = Gauge(
    "shop_process_resident_memory_bytes",
    "Resident memory of each live worker (label pid).",
    multiprocess_mode="liveall",
)
# A probe greenlet sleeps a fixed interval and measures how late it wakes: the time the
# event loop spent in something that did not yield (CPU-bound code, a blocking call) or
# busy with other ready greenlets.
EVENT_LOOP_LAG = Histogram(
    "shop_event_loop_lag_seconds",
    "How late the event-loop probe of a worker woke up, all workers.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENT_LOOP_LAG_MAX = Gauge(
    "shop_event_loop_lag_max_seconds",
    "Worst event-loop lag of each live worker over the last 15 to 30 seconds.",
    multiprocess_mode="liveall",
)
PASSWORD_HASH_QUEUE = Gauge(
    "shop_password_hash_queue_depth",
    "Logins of each live worker holding a place in the hash queue (hashing or waiting).",
    multiprocess_mode="liveall",
)
PASSWORD_HASH_QUEUE_CAPACITY = Gauge(
    "shop_password_hash_queue_capacity",
    "Places in each live worker's hash queue (hashing + waiting); beyond it a login gets 429.",
    multiprocess_mode="liveall",
)
READY = Gauge(
    "shop_ready",
    "1 if the worker's background database check (reachable, schema at head) passed.",
    multiprocess_mode="livemostrecent",
)

# One series per build however many workers run (livemax: a dead worker's copy is dropped).
BUILD_INFO = Gauge(
    "shop_build_info",
    "Always 1; its labels name the running build: package version and source revision.",
    ["version", "revision"],
    multiprocess_mode="livemax",
)


def count_retry(reason: str) -> None:
    """Count one retried unit of work (the services' ``on_retry`` hook)."""
    DB_RETRIES.labels(reason).inc()


def observe_transaction(outcome: str, seconds: float) -> None:
    """Record one unit of work's database time (the data layer's transaction hook)."""
    DB_TRANSACTION_DURATION.labels(outcome).observe(seconds)


def set_ready(ready: bool) -> None:
    """Publish the outcome of the worker's latest background database check."""
    READY.set(1 if ready else 0)


def watch_engine(engine: Engine, pool_size: int) -> None:
    """Track pool use through SQLAlchemy's pool events (the data layer counts connection
    errors through its ``on_connection_error`` hook)."""
    DB_POOL_SIZE.set(pool_size)
    event.listen(engine, "checkout", lambda *_: DB_POOL_CHECKED_OUT.inc())
    event.listen(engine, "checkin", lambda *_: DB_POOL_CHECKED_OUT.dec())


def publish_build_info(version: str, revision: str) -> None:
    """Publish which build this worker runs (``shop_build_info``)."""
    BUILD_INFO.labels(version, revision).set(1)


def record_unavailable(reason: str) -> None:
    """Count a request answered 503 (database unavailable, slow, or the deadline passed)."""
    UNAVAILABLE.labels(reason).inc()
