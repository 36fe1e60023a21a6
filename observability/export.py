"""Export kept spans in batches from an OS thread, never from the event loop.

The SDK's ``BatchSpanProcessor`` runs its worker on ``threading.Thread``; in a gevent worker
that is a greenlet, so protobuf encoding and the HTTP call run on the event loop and hold
every request behind them for as long as a batch takes. Here a real thread (gevent's
original ``start_new_thread``) does that work; the loop only appends to a deque. Sockets
the exporter opens in that thread are gevent's, served by a hub of the thread's own.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence

from gevent import monkey
from opentelemetry.context import attach, detach, set_value
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from observability.compat import SUPPRESS_INSTRUMENTATION_KEY
from observability.spans import RecordedSpan, to_readable

log = logging.getLogger(__name__)

_start_new_thread: Callable[..., int] = monkey.get_original("_thread", "start_new_thread")
_allocate_lock = monkey.get_original("_thread", "allocate_lock")
_sleep: Callable[[float], None] = monkey.get_original("time", "sleep")

# How often the export thread looks at the queue: it exports a full batch at once, and
# anything older than the schedule delay.
POLL_SECONDS = 0.05


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip().isdigit() else default


class ThreadedBatchExporter:
    """Queue spans from any thread; an OS thread converts and exports them in batches.

    Honours ``OTEL_BSP_SCHEDULE_DELAY`` (ms), ``OTEL_BSP_MAX_QUEUE_SIZE`` and
    ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``; spans beyond a full queue are dropped and counted
    (``on_drop``), and so is every batch the exporter fails to deliver (``on_failure``).
    """

    def __init__(
        self,
        exporter: SpanExporter,
        resource: Resource,
        *,
        schedule_delay_ms: int | None = None,
        max_queue_size: int | None = None,
        max_batch_size: int | None = None,
        on_drop: Callable[[int], None] = lambda count: None,
        on_failure: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self._exporter = exporter
        self._resource = resource
        delay = schedule_delay_ms or _env_int("OTEL_BSP_SCHEDULE_DELAY", 5000)
        self._delay_s = delay / 1000
        self._max_queue = max_queue_size or _env_int("OTEL_BSP_MAX_QUEUE_SIZE", 2048)
        self._max_batch = max_batch_size or _env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)
        self._on_drop = on_drop
        self._on_failure = on_failure
        self._queue: deque[RecordedSpan] = deque()
        self._export_lock = _allocate_lock()
        self._stopped = False
        self._started_pid = 0

    def submit(self, spans: Sequence[RecordedSpan]) -> None:
        """Queue spans for export (drops them if the queue is full); never blocks."""
        if self._stopped:
            return
        if self._started_pid != os.getpid():  # first use in this process (or after a fork)
            self._started_pid = os.getpid()
            _start_new_thread(self._run, ())
        if len(self._queue) + len(spans) > self._max_queue:
            self._on_drop(len(spans))
            return
        self._queue.extend(spans)

    def _run(self) -> None:
        last_export = time.monotonic()
        while not self._stopped:
            _sleep(POLL_SECONDS)
            due = time.monotonic() - last_export >= self._delay_s
            if len(self._queue) >= self._max_batch or (due and self._queue):
                self._export_queued()
                last_export = time.monotonic()

    def _export_queued(self) -> None:
        with self._export_lock:
            # The exporter's own HTTP calls must not be traced.
            token = attach(set_value(SUPPRESS_INSTRUMENTATION_KEY, True))
            try:
                while self._queue:
                    count = min(len(self._queue), self._max_batch)
                    batch = [
                        to_readable(self._queue.popleft(), self._resource) for _ in range(count)
                    ]
                    self._export(batch)
            finally:
                detach(token)

    def _export(self, batch: list[ReadableSpan]) -> None:
        try:
            result = self._exporter.export(batch)
        except Exception:
            log.exception("span export failed")
            self._on_failure("exception")
            return
        if result is not SpanExportResult.SUCCESS:  # the exporter has logged why
            self._on_failure("failure")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything queued now, in the calling thread."""
        self._export_queued()
        return True

    def shutdown(self) -> None:
        """Stop the thread, export what is queued, shut the exporter down."""
        self._stopped = True
        self._export_queued()
        self._exporter.shutdown()
