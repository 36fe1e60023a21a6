"""OpenTelemetry tracing: OTLP/HTTP export when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Without an endpoint nothing is installed: the API's no-op tracer makes every span free.
Call once per worker, after gevent has patched it (never in the gunicorn master).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import trace

_configured = False
_tracer: trace.Tracer | None = None


def tracing_enabled(env: Mapping[str, str] | None = None) -> bool:
    """Return whether an OTLP endpoint is configured (general or traces-only)."""
    env = os.environ if env is None else env
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def configure_tracing() -> bool:
    """Install the SDK and the OTLP exporter; return whether tracing is on.

    Database spans come from the data layer itself (shop/db/statements.py).
    """
    global _configured
    if _configured:
        return True
    if not tracing_enabled():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME", "shop")
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True
    return True


def tracer() -> trace.Tracer:
    """Return the shop's tracer (created once: the SDK builds a new one per call)."""
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer("shop")
    return _tracer
