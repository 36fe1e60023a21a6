"""structlog set-up: one JSON object per line (or console lines), secrets redacted.

Imports only structlog, OpenTelemetry's API and the standard library, so the gunicorn
master can use it for its own log lines without importing the app. Every line names its
``service``, ``version`` and ``pid``.
"""

from __future__ import annotations

import logging
import logging.config
import os
import re
import sys
from typing import Any

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from observability.service import service_name, service_version

SECRET_KEYS = frozenset({"password", "token", "authorization", "secret", "jwt_secret", "cookie"})
# A bearer credential or anything shaped like a JWT, wherever it hides in a message.
SECRET_PATTERN = re.compile(r"(Bearer\s+)\S+|eyJ[\w-]+\.[\w-]+\.[\w-]*", re.IGNORECASE)
REDACTED = "[redacted]"
_SERVICE = service_name()
_VERSION = service_version()


def redact_secrets(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Blank values under secret-looking keys and scrub tokens out of strings."""
    for key, value in event.items():
        if key.lower() in SECRET_KEYS:
            event[key] = REDACTED
        elif isinstance(value, str) and ("eyJ" in value or "earer" in value):
            event[key] = SECRET_PATTERN.sub(_scrub, value)
    return event


def _scrub(match: re.Match[str]) -> str:
    return f"{match.group(1)}{REDACTED}" if match.group(1) else REDACTED


def add_trace_ids(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Add the current span's ``trace_id`` (32 hex) and ``span_id`` (16 hex), if any."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def add_service(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Add ``service``, ``version`` and ``pid``: which worker of which build wrote the line."""
    event["service"] = _SERVICE
    event["version"] = _VERSION
    event["pid"] = os.getpid()
    return event


def shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
        add_trace_ids,
        structlog.processors.format_exc_info,
        redact_secrets,
    ]


def renderer(log_format: str) -> Processor:
    if log_format == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=False)


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """Return a ``logging.config`` dict routing every stdlib logger through structlog."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    renderer(log_format),
                ],
                "foreign_pre_chain": shared_processors(),
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "structlog",
                "stream": sys.stderr,
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "pgserver": {"level": "WARNING"},
            "alembic.runtime.plugins": {"level": "WARNING"},
            # The pool logs each invalidated connection at INFO; the app reports the fault.
            "sqlalchemy.pool": {"level": "WARNING"},
            "shop.db.engine.BudgetedQueuePool": {"level": "WARNING"},
        },
    }


def access_logger(log_format: str, level: str) -> Any:
    """Return a logger for the per-request access line that writes straight to stderr.

    It skips the stdlib round trip the other loggers take, which halves its cost
    (ammo/RESULTS.md); the lines look the same.
    """
    return structlog.wrap_logger(
        structlog.WriteLogger(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _named("shop.access"),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_service,
            add_trace_ids,
            redact_secrets,
            renderer(log_format),
        ],
    )


def _named(name: str) -> Processor:
    def add_name(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event["logger"] = name
        return event

    return add_name


def configure_logging(log_format: str, level: str) -> None:
    """Configure structlog and the stdlib root logger for this process."""
    logging.config.dictConfig(logging_config(log_format, level))
    logging.captureWarnings(True)
    structlog.configure(
        processors=[
            *shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
