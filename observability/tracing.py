"""OpenTelemetry tracing: OTLP/HTTP export when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Without an endpoint nothing is installed: the API's no-op tracer makes every span free.
With one, every span is recorded and ``observability.sampling`` decides per request, when
it ends, whether its whole trace is exported (slow, failed, sampled by the caller, or in
the sampled share); ``observability.export`` sends kept spans from an OS thread.
Call once per worker, after gevent has patched it (never in the gunicorn master).
"""

from __future__ import annotations

import atexit
import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource

from observability.service import service_name, service_version

if TYPE_CHECKING:
    from observability.config import ObservabilitySettings

_configured = False
_tracer: trace.Tracer | None = None


def tracing_enabled(env: Mapping[str, str] | None = None) -> bool:
    """Return whether an OTLP endpoint is configured (general or traces-only)."""
    env = os.environ if env is None else env
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def build_resource(environment: str = "") -> Resource:
    """Describe this worker: service, version, pid, host, deployment environment.

    ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME`` override these defaults, as
    OpenTelemetry's own variables do everywhere.
    """
    defaults: dict[str, str | int] = {
        "service.name": service_name(os.environ),
        "service.version": service_version(),
        "process.pid": os.getpid(),
        "host.name": socket.gethostname(),
    }
    if environment:
        defaults["deployment.environment.name"] = environment
    return Resource.create(defaults).merge(OTELResourceDetector().detect())


def configure_tracing(settings: ObservabilitySettings) -> bool:
    """Install the tail-sampling tracer and its exporter; return whether tracing is on.

    Database spans come from the data layer itself (shop/db/statements.py).
    """
    global _configured
    if _configured:
        return True
    if not tracing_enabled():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from observability.export import ThreadedBatchExporter
    from observability.sampling import (
        TailSampler,
        TracePolicy,
        count_export_drops,
        count_export_failure,
    )
    from observability.spans import TracerProvider

    exporter = ThreadedBatchExporter(
        OTLPSpanExporter(),
        build_resource(settings.deployment_environment),
        on_drop=count_export_drops,
        on_failure=count_export_failure,
    )
    policy = TracePolicy(
        slow_ms=settings.trace_slow_threshold_ms, sample_ratio=settings.trace_sample_ratio
    )
    provider = TracerProvider(TailSampler(exporter, policy))
    trace.set_tracer_provider(provider)
    atexit.register(exporter.shutdown)
    _configured = True
    return True


def tracer() -> trace.Tracer:
    """Return the shop's tracer (created once: the SDK builds a new one per call)."""
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer("shop")
    return _tracer
