"""Tail sampling in the worker: keep every slow or failed request's whole trace, and a share.

Every span is recorded; the spans of a local trace (the server span and everything below
it in this process) wait in memory until its local root ends, and then all of them are
exported or all dropped. A trace is kept when its root

- failed (span status ERROR: a 5xx, see ``observability.http``), or
- took longer than the latency SLI's threshold (``TRACE_SLOW_THRESHOLD_MS``), or
- continues a caller's trace that the caller sampled (W3C ``traceparent`` flag 01), or
- falls in the sampled share (``TRACE_SAMPLE_RATIO``), decided on the trace id the way
  OpenTelemetry's ``TraceIdRatioBased`` sampler does, so services agree on a trace.

Memory is bounded: at most ``max_spans`` spans wait per worker and ``max_spans_per_trace``
per trace; beyond that spans are dropped and counted, never blocked on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gevent import monkey
from opentelemetry.trace import StatusCode
from prometheus_client import Counter

from observability.spans import RecordedSpan

# A native lock even under gevent: nothing inside it blocks or yields, and spans may end
# in real threads too.
_allocate_lock = monkey.get_original("_thread", "allocate_lock")

TRACE_ID_LOW_BITS = (1 << 64) - 1
DEFAULT_SLOW_MS = 50.0
DEFAULT_SAMPLE_RATIO = 0.01

TRACES_KEPT = Counter(
    "shop_traces_kept",
    "Local traces exported, by the first reason that kept them: error, slow, parent, sampled.",
    ["reason"],
)
SPANS_DROPPED = Counter(
    "shop_trace_spans_dropped",
    "Spans of kept or undecided traces dropped by a memory bound, by reason.",
    ["reason"],
)
EXPORT_FAILURES = Counter(
    "shop_trace_export_failures",
    "Batches of spans the OTLP exporter failed to deliver, by reason: failure (it reported"
    " one: collector unreachable, refused or slow past its timeout) or exception (it raised).",
    ["reason"],
)
_KEPT = {reason: TRACES_KEPT.labels(reason) for reason in ("error", "slow", "parent", "sampled")}
_DROPPED = {
    r: SPANS_DROPPED.labels(r)
    for r in ("untracked", "trace_limit", "buffer_full", "stale", "export_queue_full")
}


class TraceSink(Protocol):
    """Where kept traces go (``observability.export.ThreadedBatchExporter``)."""

    def submit(self, spans: Sequence[RecordedSpan]) -> None: ...


@dataclass(frozen=True, slots=True)
class TracePolicy:
    """Which local traces to export: slow, failed, sampled by the caller, and a share."""

    slow_ms: float = DEFAULT_SLOW_MS
    sample_ratio: float = DEFAULT_SAMPLE_RATIO

    def __post_init__(self) -> None:
        if not (math.isfinite(self.slow_ms) and self.slow_ms >= 0):
            raise ValueError("TRACE_SLOW_THRESHOLD_MS must be a number of milliseconds >= 0")
        if not 0 <= self.sample_ratio <= 1:
            raise ValueError("TRACE_SAMPLE_RATIO must be between 0 and 1")


class _LocalTrace:
    __slots__ = ("spans", "root", "open_roots", "reason", "started", "dropped")

    def __init__(self, root: RecordedSpan, started: float) -> None:
        self.spans: list[RecordedSpan] = []
        self.root = root
        self.open_roots = 0
        self.reason: str | None = None
        self.started = started
        self.dropped = 0

    def drop(self, reason: str) -> None:
        """Count a child dropped by a limit, on the root too: Tempo then shows a gap."""
        _DROPPED[reason].inc()
        self.dropped += 1
        self.root.set_attribute("shop.trace.dropped_spans", self.dropped)


class TailSampler:
    """Buffer each local trace until its root ends, then hand all of it on, or none."""

    def __init__(
        self,
        sink: TraceSink,
        policy: TracePolicy,
        *,
        max_spans: int = 8192,
        max_spans_per_trace: int = 256,
        remembered: int = 1024,
        max_age_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sink = sink
        self._slow_ns = int(policy.slow_ms * 1e6)
        # Kept when the trace id's low 64 bits fall under this bound (TraceIdRatioBased).
        self._sample_bound = round(policy.sample_ratio * (TRACE_ID_LOW_BITS + 1))
        self._max_spans = max_spans
        self._max_per_trace = max_spans_per_trace
        self._remembered = remembered
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = _allocate_lock()
        self._traces: dict[int, _LocalTrace] = {}
        # Recent traces kept (True) or never admitted (False), for spans that end late;
        # two generations of up to ``remembered`` each. A trace in neither was dropped.
        self._recent: dict[int, bool] = {}
        self._older: dict[int, bool] = {}
        self._buffered = 0

    def on_start(self, span: RecordedSpan) -> None:
        """Open (or join) the local trace of a span without a local parent."""
        trace_id = span.context.trace_id
        with self._lock:
            local = self._traces.get(trace_id)
            if local is None:
                if self._buffered >= self._max_spans and not self._evict_stale():
                    self._remember(trace_id, False)  # full: its spans are dropped as they end
                    return
                local = self._traces[trace_id] = _LocalTrace(span, self._clock())
            local.open_roots += 1

    def on_end(self, span: RecordedSpan) -> None:
        """Buffer an ended span; decide when the last local root of its trace ends."""
        trace_id = span.context.trace_id
        with self._lock:
            local = self._traces.get(trace_id)
            if local is None:
                kept = self._late(trace_id, span)
            else:
                kept = self._add(trace_id, local, span)
        if kept:
            self._sink.submit(kept)

    def _late(self, trace_id: int, span: RecordedSpan) -> list[RecordedSpan]:
        """Follow the trace's decision for a span that ends after its root."""
        keep = self._recent.get(trace_id, self._older.get(trace_id))
        if keep is False:
            _DROPPED["untracked"].inc()  # the buffer was full when the trace began
        return [span] if keep else []

    def _remember(self, trace_id: int, keep: bool) -> None:
        self._recent[trace_id] = keep
        if len(self._recent) >= self._remembered:
            self._older, self._recent = self._recent, {}

    def _add(self, trace_id: int, local: _LocalTrace, span: RecordedSpan) -> list[RecordedSpan]:
        parent = span.parent
        if parent is not None and not parent.is_remote:
            if len(local.spans) >= self._max_per_trace:
                local.drop("trace_limit")
            elif self._buffered >= self._max_spans:
                local.drop("buffer_full")
            else:
                local.spans.append(span)
                self._buffered += 1
            return []
        # A root is always kept with its trace: it was admitted when the trace began.
        local.spans.append(span)
        self._buffered += 1
        local.reason = local.reason or self._reason(span)
        local.open_roots -= 1
        return self._decide(trace_id, local) if local.open_roots == 0 else []

    def _reason(self, root: RecordedSpan) -> str | None:
        """Return why a local root's trace is kept, or None."""
        if root.status.status_code is StatusCode.ERROR:
            return "error"
        if (root.end_time or 0) - (root.start_time or 0) > self._slow_ns:
            return "slow"
        parent = root.parent
        if parent is not None and parent.trace_flags.sampled:
            return "parent"
        if root.context.trace_id & TRACE_ID_LOW_BITS < self._sample_bound:
            return "sampled"
        return None

    def _decide(self, trace_id: int, local: _LocalTrace) -> list[RecordedSpan]:
        """Forget the trace (remember it if kept); return the spans to export."""
        del self._traces[trace_id]
        self._buffered -= len(local.spans)
        if local.reason is None:
            return []  # the common case: nothing to count, nothing to remember
        self._remember(trace_id, True)
        _KEPT[local.reason].inc()
        return local.spans

    def _evict_stale(self) -> bool:
        """Drop traces whose root never ended (a leaked span); return whether room was made."""
        deadline = self._clock() - self._max_age_s
        stale = []
        for trace_id, local in self._traces.items():  # oldest first
            if local.started > deadline:
                break
            stale.append(trace_id)
        for trace_id in stale:
            local = self._traces.pop(trace_id)
            self._buffered -= len(local.spans)
            _DROPPED["stale"].inc(len(local.spans))
        return self._buffered < self._max_spans


_EXPORT_FAILED = {r: EXPORT_FAILURES.labels(r) for r in ("failure", "exception")}


def count_export_failure(reason: str) -> None:
    """Count one batch of spans the exporter did not deliver."""
    _EXPORT_FAILED[reason].inc()


def count_export_drops(count: int) -> None:
    """Count spans of kept traces dropped because the export queue was full."""
    _DROPPED["export_queue_full"].inc(count)
