"""Who is talking: the service's name, version and process, for logs and traces alike.

Standard library only, so the gunicorn master can use it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from importlib import metadata

DEFAULT_NAME = "shop"


def service_name(env: Mapping[str, str] | None = None) -> str:
    """Return ``OTEL_SERVICE_NAME``, else ``shop``."""
    env = os.environ if env is None else env
    return env.get("OTEL_SERVICE_NAME") or DEFAULT_NAME


@cache
def service_version() -> str:
    """Return the installed package's version (``0+unknown`` when run from a bare tree)."""
    try:
        return metadata.version("shop")
    except metadata.PackageNotFoundError:
        return "0+unknown"
