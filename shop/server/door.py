"""Wire the worker's admission to the settings and to observability (after gevent patching)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from werkzeug.exceptions import HTTPException

from observability import http, metrics, saturation
from shop.server.admission import Admission
from shop.settings import Settings


def wire(app: Any) -> tuple[Admission, Callable[[str, str, float, str, float], None]]:
    """Return this worker's admission control and what to do with each refused request."""
    settings = Settings.from_env()
    admission = Admission(
        max_in_flight=settings.max_in_flight,
        target=settings.admission_target_ms / 1000,
        # Past half its budget a request would likely end in a deadline 503 after all.
        max_wait=settings.request_timeout / 2,
        on_limit=metrics.ADMISSION_LIMIT.set,
    )
    metrics.ADMISSION_LIMIT.set(admission.limit)
    route_of = _router(app)

    def on_refusal(method: str, path: str, seconds: float, reason: str, cpu: float) -> None:
        http.observe_refused(method, route_of(method, path), seconds)
        saturation.refused(reason)
        metrics.REFUSAL_CPU.inc(cpu)

    return admission, on_refusal


def _router(app: Any) -> Callable[[str, str], str]:
    """Return a function naming the URL rule of a path, as the app's metrics label it."""
    url_map = getattr(app, "url_map", None)
    if url_map is None:  # not a Flask app: every refusal under one label
        return lambda method, path: http.UNMATCHED_ROUTE
    adapter = url_map.bind("localhost")

    @lru_cache(maxsize=512)
    def route_of(method: str, path: str) -> str:
        try:
            rule, _ = adapter.match(path, method, return_rule=True)
        except HTTPException:
            return http.UNMATCHED_ROUTE
        return str(rule.rule)

    return route_of
