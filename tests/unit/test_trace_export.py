"""Batches the OTLP exporter fails to deliver are counted (shop_trace_export_failures_total)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from prometheus_client import REGISTRY

from observability.export import ThreadedBatchExporter
from observability.sampling import count_export_failure
from observability.spans import RecordedSpan, TracerProvider
from tests.helpers import free_port
from tests.otlp_receiver import OtlpReceiver


class Kept:
    """Keeps every ended span (stands in for the tail sampler)."""

    def __init__(self) -> None:
        self.spans: list[RecordedSpan] = []

    def on_start(self, span: RecordedSpan) -> None:
        pass

    def on_end(self, span: RecordedSpan) -> None:
        self.spans.append(span)


class Raising(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        raise ConnectionResetError("collector went away")


def failures(reason: str) -> float:
    found = REGISTRY.get_sample_value("shop_trace_export_failures_total", {"reason": reason})
    return found or 0.0


def a_span() -> RecordedSpan:
    kept = Kept()
    TracerProvider(kept).get_tracer("test").start_span("work").end()
    (span,) = kept.spans
    return span


def export_one(exporter: SpanExporter) -> None:
    """Export one span through the service's exporter thread wrapper, counting failures."""
    batches = ThreadedBatchExporter(exporter, Resource.create({}), on_failure=count_export_failure)
    try:
        batches.submit([a_span()])
        batches.force_flush()
    finally:
        batches.shutdown()


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    started = OtlpReceiver().start()
    yield started
    started.stop()


class TestTraceExportFailures:
    def test_a_delivered_batch_is_not_counted(self, receiver: OtlpReceiver) -> None:
        before = failures("failure"), failures("exception")
        export_one(OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces", timeout=5))
        assert [span.name for span in receiver.spans] == ["work"]
        assert (failures("failure"), failures("exception")) == before

    def test_a_batch_the_collector_refuses_is_counted(self, receiver: OtlpReceiver) -> None:
        before = failures("failure")
        export_one(OTLPSpanExporter(endpoint=f"{receiver.endpoint}/nowhere", timeout=5))
        assert receiver.spans == []
        assert failures("failure") == before + 1

    def test_a_batch_for_a_closed_port_is_counted(self) -> None:
        before = failures("failure")
        export_one(
            OTLPSpanExporter(endpoint=f"http://127.0.0.1:{free_port()}/v1/traces", timeout=1)
        )
        assert failures("failure") == before + 1

    def test_an_exporter_that_raises_is_counted_as_an_exception(self) -> None:
        before = failures("exception")
        export_one(Raising())
        assert failures("exception") == before + 1

    def test_both_reasons_are_exposed_before_any_failure(self) -> None:
        assert (
            REGISTRY.get_sample_value("shop_trace_export_failures_total", {"reason": "failure"})
            is not None
        )
        assert (
            REGISTRY.get_sample_value("shop_trace_export_failures_total", {"reason": "exception"})
            is not None
        )
