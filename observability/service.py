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


# Set by the image's build (a build argument): the image runs the code without installing it.
VERSION_ENV = "SHOP_VERSION"


def service_version(env: Mapping[str, str] | None = None) -> str:
    """Return ``SHOP_VERSION``, else the installed package's version (``0+unknown`` when run
    from a bare tree)."""
    env = os.environ if env is None else env
    return env.get(VERSION_ENV, "").strip() or _package_version()


@cache
def _package_version() -> str:
    try:
        return metadata.version("shop")
    except metadata.PackageNotFoundError:
        return "0+unknown"
