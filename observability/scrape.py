"""``GET /metrics``: the samples of every worker, in Prometheus' text format."""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def exposition() -> Response:
    """Serve the samples of every worker, summed; never touches the database."""
    registry: Any = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
