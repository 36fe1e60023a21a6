"""A lean OpenTelemetry tracer: spans are plain objects until a trace is kept.

The tail policy (``observability.sampling``) must record every span of every request to
decide at its end. The SDK's spans cost 20-40 us each in a gevent worker (each builds
locks, bounded containers and a read-only copy at ``end``), several times the cost of
the request's own Python work per span, for spans that are then mostly dropped. These
implement the same API (``opentelemetry.trace.Tracer``/``Span``: instrumentations and
``trace.get_current_span`` work unchanged) with a few slots each; only spans of kept
traces become SDK ``ReadableSpan`` objects, in the export thread (``to_readable``).
"""

from __future__ import annotations

import random
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Protocol

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

from observability.compat import agnostic_contextmanager

# The SDK's default limits, so a runaway loop cannot grow one span without bound.
MAX_ATTRIBUTES = 128
MAX_EVENTS = 128
MAX_LINKS = 128
UNSET = Status(StatusCode.UNSET)
# Every span is recorded and may be exported: the W3C "sampled" flag says exactly that.
RECORDED = TraceFlags(TraceFlags.SAMPLED)


def exception_type(error: BaseException) -> str:
    """Name an exception's type as the SDK does: ``module.Qualname``, builtins bare."""
    kind = type(error)
    module = kind.__module__
    return f"{module}.{kind.__qualname__}" if module and module != "builtins" else kind.__qualname__


class SpanSink(Protocol):
    """Receives spans as they start and end (``observability.sampling.TailSampler``)."""

    def on_start(self, span: RecordedSpan) -> None: ...

    def on_end(self, span: RecordedSpan) -> None: ...


class RecordedSpan(trace.Span):
    """One span's data, mutable until ``end`` hands it to the sink."""

    __slots__ = (
        "name",
        "context",
        "parent",
        "kind",
        "attributes",
        "events",
        "links",
        "status",
        "start_time",
        "end_time",
        "scope",
        "_sink",
        "_record_exception",
        "_set_status_on_exception",
    )

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: types.Attributes,
        links: Sequence[Link] | None,
        start_time: int | None,
        scope: InstrumentationScope,
        sink: SpanSink,
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.attributes: dict[str, types.AnyValue] = dict(attributes) if attributes else {}
        self.events: list[Event] = []
        self.links: list[Link] = list(links[:MAX_LINKS]) if links else []
        self.status = UNSET
        self.start_time = time.time_ns() if start_time is None else start_time
        self.end_time: int | None = None
        self.scope = scope
        self._sink = sink
        self._record_exception = True
        self._set_status_on_exception = True

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if self.end_time is None and (
            len(self.attributes) < MAX_ATTRIBUTES or key in self.attributes
        ):
            self.attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        if self.end_time is None and len(self.events) < MAX_EVENTS:
            self.events.append(
                Event(name, attributes, time.time_ns() if timestamp is None else timestamp)
            )

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self.end_time is None and len(self.links) < MAX_LINKS and context.is_valid:
            self.links.append(Link(context, attributes))

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # As in the SDK: OK is final, UNSET never overrides.
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return
        new = status if isinstance(status, Status) else Status(status, description)
        if new.status_code is not StatusCode.UNSET:
            self.status = new

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        details: dict[str, types.AnyValue] = {
            "exception.type": exception_type(exception),
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        details.update(attributes or {})
        self.add_event("exception", details, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is None:
            self.end_time = time.time_ns() if end_time is None else end_time
            self._sink.on_end(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if isinstance(exc_val, Exception):
            if self._record_exception:
                self.record_exception(exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}")
        self.end()


class Tracer(trace.Tracer):
    """Start ``RecordedSpan`` objects, children of the context's current span."""

    def __init__(self, scope: InstrumentationScope, sink: SpanSink) -> None:
        self._scope = scope
        self._sink = sink

    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> RecordedSpan:
        parent: SpanContext | None = trace.get_current_span(context).get_span_context()
        span_id = random.getrandbits(64) or 1
        if parent is not None and parent.is_valid:
            own = SpanContext(parent.trace_id, span_id, False, RECORDED, parent.trace_state)
        else:
            parent = None
            own = SpanContext(random.getrandbits(128) or 1, span_id, False, RECORDED)
        span = RecordedSpan(
            name, own, parent, kind, attributes, links, start_time, self._scope, self._sink
        )
        span._record_exception = record_exception
        span._set_status_on_exception = set_status_on_exception
        if parent is None or parent.is_remote:
            self._sink.on_start(span)
        return span

    @agnostic_contextmanager
    def start_as_current_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception,
            set_status_on_exception,
        )  # fmt: skip
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class TracerProvider(trace.TracerProvider):
    """Hand out ``Tracer`` objects that all report to one sink."""

    def __init__(self, sink: SpanSink) -> None:
        self._sink = sink
        self._tracers: dict[tuple[str, str | None, str | None], Tracer] = {}

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> Tracer:
        key = (instrumenting_module_name, instrumenting_library_version, schema_url)
        if key not in self._tracers:
            scope = InstrumentationScope(
                instrumenting_module_name, instrumenting_library_version, schema_url, attributes
            )
            self._tracers[key] = Tracer(scope, self._sink)
        return self._tracers[key]


def to_readable(span: RecordedSpan, resource: Resource) -> ReadableSpan:
    """Build the SDK's read-only span for the exporter (attribute values checked there)."""
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=resource,
        attributes=BoundedAttributes(MAX_ATTRIBUTES, span.attributes, immutable=True),
        events=span.events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.scope,
    )
