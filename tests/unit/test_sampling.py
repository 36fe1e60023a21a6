"""The tail-sampling policy, the lean spans it records and the exporter thread behind it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from prometheus_client import REGISTRY

from observability.export import ThreadedBatchExporter
from observability.sampling import TailSampler, TracePolicy
from observability.spans import RecordedSpan, Tracer, TracerProvider, to_readable
from shop.settings import Settings, SettingsError

MS = 1_000_000  # nanoseconds


class FakeSink:
    """Collects what the sampler hands on, one list per submit."""

    def __init__(self) -> None:
        self.batches: list[list[RecordedSpan]] = []

    def submit(self, spans: Sequence[RecordedSpan]) -> None:
        self.batches.append(list(spans))

    @property
    def names(self) -> list[str]:
        return [span.name for batch in self.batches for span in batch]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def tracer_for(sampler: TailSampler) -> Tracer:
    return TracerProvider(sampler).get_tracer("test")


def remote_parent(trace_id: int, sampled: bool) -> Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    parent = SpanContext(trace_id, 0xABC, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(parent))


def request(
    tracer: Tracer,
    duration_ms: float = 1,
    status: StatusCode = StatusCode.UNSET,
    parent: Context | None = None,
) -> RecordedSpan:
    """Play one request: server span, unit of work, a statement, a password hash."""
    root = tracer.start_span("GET /api/info", context=parent, kind=SpanKind.SERVER, start_time=0)
    with trace.use_span(root):
        with tracer.start_as_current_span("unit_of_work"):
            tracer.start_span("SELECT users").end()
        tracer.start_span("password.verify").end()
    root.set_status(status)
    root.end(end_time=int(duration_ms * MS))
    return root


def kept(reason: str) -> float:
    return REGISTRY.get_sample_value("shop_traces_kept_total", {"reason": reason}) or 0.0


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("shop_trace_spans_dropped_total", {"reason": reason}) or 0.0


class TestTracePolicy:
    def test_defaults_are_the_sli_threshold_and_one_percent(self) -> None:
        settings = Settings.from_env({})
        assert (settings.trace_slow_threshold_ms, settings.trace_sample_ratio) == (50.0, 0.01)
        assert TracePolicy() == TracePolicy(slow_ms=50.0, sample_ratio=0.01)

    def test_settings_read_both(self) -> None:
        settings = Settings.from_env({"TRACE_SLOW_THRESHOLD_MS": "20", "TRACE_SAMPLE_RATIO": "0.1"})
        assert (settings.trace_slow_threshold_ms, settings.trace_sample_ratio) == (20.0, 0.1)

    @pytest.mark.parametrize(
        "env",
        [
            {"TRACE_SAMPLE_RATIO": "1.5"},
            {"TRACE_SAMPLE_RATIO": "-0.1"},
            {"TRACE_SAMPLE_RATIO": "ten"},
            {"TRACE_SLOW_THRESHOLD_MS": "-1"},
        ],
    )
    def test_settings_refuse_a_bad_value_naming_the_variable(self, env: dict[str, str]) -> None:
        with pytest.raises(SettingsError, match=next(iter(env))):
            Settings.from_env(env)

    def test_the_policy_refuses_what_no_setting_can_mean(self) -> None:
        with pytest.raises(ValueError, match="TRACE_SLOW_THRESHOLD_MS"):
            TracePolicy(slow_ms=float("nan"))


class TestTailSampler:
    def sampler(self, sink: FakeSink, ratio: float = 0.0, **limits: Any) -> TailSampler:
        return TailSampler(sink, TracePolicy(slow_ms=50, sample_ratio=ratio), **limits)

    def test_a_fast_successful_request_is_dropped_whole(self) -> None:
        sink = FakeSink()
        before = sum(kept(reason) for reason in ("error", "slow", "parent", "sampled"))
        request(tracer_for(self.sampler(sink)), duration_ms=49)
        assert sink.batches == []
        assert sum(kept(reason) for reason in ("error", "slow", "parent", "sampled")) == before

    def test_a_slow_request_is_kept_with_every_child_in_one_batch(self) -> None:
        sink = FakeSink()
        before = kept("slow")
        root = request(tracer_for(self.sampler(sink)), duration_ms=51)
        (batch,) = sink.batches
        assert sorted(s.name for s in batch) == sorted(
            ["GET /api/info", "unit_of_work", "SELECT users", "password.verify"]
        )
        assert {s.context.trace_id for s in batch} == {root.context.trace_id}
        assert kept("slow") == before + 1

    def test_exactly_the_threshold_is_not_slow_like_the_sli_bucket(self) -> None:
        sink = FakeSink()
        request(tracer_for(self.sampler(sink)), duration_ms=50)
        assert sink.batches == []

    def test_a_failed_request_is_kept_whole(self) -> None:
        sink = FakeSink()
        before = kept("error")
        request(tracer_for(self.sampler(sink)), duration_ms=2, status=StatusCode.ERROR)
        assert len(sink.names) == 4
        assert kept("error") == before + 1

    def test_a_trace_the_caller_sampled_is_kept(self) -> None:
        sink = FakeSink()
        request(tracer_for(self.sampler(sink)), parent=remote_parent(7, sampled=True))
        assert len(sink.names) == 4

    def test_a_slow_request_is_kept_even_when_the_caller_did_not_sample(self) -> None:
        sink = FakeSink()
        tracer = tracer_for(self.sampler(sink))
        request(tracer, duration_ms=80, parent=remote_parent(7, sampled=False))
        request(tracer, duration_ms=1, parent=remote_parent(8, sampled=False))
        assert [batch[-1].context.trace_id for batch in sink.batches] == [7]

    @pytest.mark.parametrize(("low_bits", "kept"), [(0, True), (2**62 - 1, True), (2**62, False)])
    def test_the_share_is_decided_on_the_trace_ids_low_bits(
        self, low_bits: int, kept: bool
    ) -> None:
        sink = FakeSink()
        trace_id = (0xFEED << 64) | low_bits
        request(tracer_for(self.sampler(sink, ratio=0.25)), parent=remote_parent(trace_id, False))
        assert bool(sink.batches) is kept

    def test_the_share_of_fast_requests_kept_is_close_to_the_ratio(self) -> None:
        sink = FakeSink()
        tracer = tracer_for(self.sampler(sink, ratio=0.1))
        for _ in range(4000):
            request(tracer)
        assert 300 <= len(sink.batches) <= 500  # 400 expected; 5 standard deviations

    def test_a_span_ending_after_its_root_follows_the_decision(self) -> None:
        sink = FakeSink()
        tracer = tracer_for(self.sampler(sink))
        for duration_ms in (80, 1):
            root = tracer.start_span("GET /api/info", start_time=0)
            late = tracer.start_span("cleanup", context=trace.set_span_in_context(root))
            root.end(end_time=int(duration_ms * MS))
            late.end()
        assert [[s.name for s in batch] for batch in sink.batches] == [
            ["GET /api/info"],
            ["cleanup"],
        ]

    def test_a_full_buffer_drops_new_traces_and_keeps_the_ones_it_holds(self) -> None:
        sink = FakeSink()
        tracer = tracer_for(self.sampler(sink, max_spans=2))
        before = dropped("untracked")
        held = tracer.start_span("GET /held", start_time=0)
        with trace.use_span(held):
            for _ in range(2):
                tracer.start_span("SELECT").end()
        request(tracer, duration_ms=80)  # arrives while the buffer is full
        held.end(end_time=80 * MS)
        assert [[s.name for s in batch] for batch in sink.batches] == [
            ["SELECT", "SELECT", "GET /held"]
        ]
        assert dropped("untracked") == before + 4

    def test_a_trace_over_its_limit_keeps_its_root_and_first_children(self) -> None:
        sink = FakeSink()
        tracer = tracer_for(self.sampler(sink, max_spans_per_trace=2))
        before = dropped("trace_limit")
        root = tracer.start_span("GET /api/info", start_time=0)
        with trace.use_span(root):
            for number in range(5):
                tracer.start_span(f"SELECT {number}").end()
        root.end(end_time=80 * MS)
        assert sink.names == ["SELECT 0", "SELECT 1", "GET /api/info"]
        assert root.attributes["shop.trace.dropped_spans"] == 3
        assert dropped("trace_limit") == before + 3

    def test_a_trace_whose_root_never_ends_is_evicted_once_stale(self) -> None:
        sink, clock = FakeSink(), Clock()
        sampler = TailSampler(sink, TracePolicy(), max_spans=3, max_age_s=60, clock=clock)
        tracer = tracer_for(sampler)
        leaked = tracer.start_span("GET /leaked")
        with trace.use_span(leaked):
            for _ in range(3):
                tracer.start_span("SELECT").end()
        clock.now = 61
        request(tracer, duration_ms=80)
        assert len(sink.names) == 4  # the new slow trace found room

    def test_two_requests_continuing_one_trace_are_decided_together(self) -> None:
        sink = FakeSink()
        tracer = tracer_for(self.sampler(sink))
        parent = remote_parent(42, sampled=False)
        first = tracer.start_span("GET /a", context=parent, start_time=0)
        second = tracer.start_span("GET /b", context=parent, start_time=0)
        first.end(end_time=1 * MS)
        second.end(end_time=90 * MS)
        assert sorted(sink.names) == ["GET /a", "GET /b"]


class TestRecordedSpan:
    def tracer(self) -> tuple[Tracer, FakeSink]:
        sink = FakeSink()
        return tracer_for(TailSampler(sink, TracePolicy(slow_ms=0))), sink

    def test_children_share_the_trace_and_point_at_their_parent(self) -> None:
        tracer, _ = self.tracer()
        with tracer.start_as_current_span("root") as root:
            child = tracer.start_span("child")
        assert child.context.trace_id == root.get_span_context().trace_id
        assert child.parent == root.get_span_context()
        assert trace.get_current_span() is not root

    def test_an_exception_escaping_a_span_is_recorded_and_fails_it(self) -> None:
        tracer, sink = self.tracer()
        with pytest.raises(KeyError), tracer.start_as_current_span("work"):
            raise KeyError("gone")
        (span,) = sink.batches[0]
        assert span.status.status_code is StatusCode.ERROR
        (event,) = span.events
        assert event.name == "exception"
        assert event.attributes is not None
        assert event.attributes["exception.type"] == "KeyError"
        assert "raise KeyError" in str(event.attributes["exception.stacktrace"])

    def test_a_span_used_directly_as_a_context_manager_records_too(self) -> None:
        tracer, sink = self.tracer()
        with pytest.raises(ValueError), tracer.start_span("work"):
            raise ValueError("bad")
        assert sink.batches[0][0].status.status_code is StatusCode.ERROR

    def test_ok_is_final_and_unset_never_overrides(self) -> None:
        tracer, _ = self.tracer()
        span = tracer.start_span("work")
        span.set_status(StatusCode.ERROR, "first")
        span.set_status(Status(StatusCode.UNSET))
        assert span.status.description == "first"
        span.set_status(StatusCode.OK)
        span.set_status(StatusCode.ERROR)
        assert span.status.status_code is StatusCode.OK

    def test_nothing_changes_after_end_and_a_second_end_is_ignored(self) -> None:
        tracer, sink = self.tracer()
        span = tracer.start_span("work")
        span.end()
        span.set_attribute("late", 1)
        span.update_name("renamed")
        span.end()
        assert (span.name, span.attributes, span.is_recording()) == ("work", {}, False)
        assert len(sink.batches) == 1

    def test_attributes_and_events_are_bounded(self) -> None:
        tracer, _ = self.tracer()
        span = tracer.start_span("work")
        for number in range(200):
            span.set_attribute(f"a{number}", number)
            span.add_event(f"e{number}")
        assert len(span.attributes) == 128 and len(span.events) == 128

    def test_becomes_an_sdk_span_for_the_exporter(self) -> None:
        tracer, _ = self.tracer()
        resource = Resource.create({"service.name": "t"})
        with tracer.start_as_current_span("root", kind=SpanKind.SERVER, attributes={"k": "v"}):
            child = tracer.start_span("child", attributes={"n": 1})
        child.set_status(StatusCode.ERROR, "boom")
        child.end()
        readable = to_readable(child, resource)
        assert readable.name == "child"
        assert readable.parent == child.parent
        assert dict(readable.attributes or {}) == {"n": 1}
        assert readable.status.description == "boom"
        assert readable.resource is resource
        assert readable.instrumentation_scope is not None
        assert readable.instrumentation_scope.name == "test"
        assert readable.end_time == child.end_time


class RecordingExporter(SpanExporter):
    def __init__(self) -> None:
        self.batches: list[list[ReadableSpan]] = []
        self.threads: set[int] = set()
        self.shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches.append(list(spans))
        self.threads.add(threading.get_ident())
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut_down = True


class TestThreadedBatchExporter:
    def spans(self, count: int) -> list[RecordedSpan]:
        tracer = tracer_for(TailSampler(FakeSink(), TracePolicy()))
        made = [tracer.start_span(f"s{number}") for number in range(count)]
        for span in made:
            span.end()
        return made

    def test_exports_from_a_thread_of_its_own_within_the_schedule_delay(self) -> None:
        exporter = RecordingExporter()
        batcher = ThreadedBatchExporter(exporter, Resource.create({}), schedule_delay_ms=50)
        batcher.submit(self.spans(3))
        deadline = threading.Event()
        for _ in range(100):
            if exporter.batches:
                break
            deadline.wait(0.05)
        assert [s.name for s in exporter.batches[0]] == ["s0", "s1", "s2"]
        assert threading.get_ident() not in exporter.threads
        batcher.shutdown()

    def test_splits_into_batches_and_flushes_on_demand(self) -> None:
        exporter = RecordingExporter()
        batcher = ThreadedBatchExporter(
            exporter, Resource.create({}), schedule_delay_ms=60_000, max_batch_size=2
        )
        batcher.submit(self.spans(1))  # starts the thread; it waits a minute
        batcher.force_flush()
        batcher.submit(self.spans(5))
        batcher.shutdown()
        assert [len(batch) for batch in exporter.batches] == [1, 2, 2, 1]
        assert exporter.shut_down

    def test_drops_and_counts_what_does_not_fit_the_queue(self) -> None:
        exporter, drops = RecordingExporter(), list[int]()
        batcher = ThreadedBatchExporter(
            exporter,
            Resource.create({}),
            schedule_delay_ms=60_000,
            max_queue_size=4,
            on_drop=drops.append,
        )
        batcher.submit(self.spans(3))
        batcher.submit(self.spans(2))
        batcher.shutdown()
        assert drops == [2]
        assert [len(batch) for batch in exporter.batches] == [3]

    def test_nothing_is_queued_after_shutdown(self) -> None:
        exporter = RecordingExporter()
        batcher = ThreadedBatchExporter(exporter, Resource.create({}))
        batcher.shutdown()
        batcher.submit(self.spans(1))
        batcher.force_flush()
        assert exporter.batches == []
