"""Typed, frozen settings read once from the environment and validated at start-up.

Imports only the standard library: gunicorn's master and the launcher read the same
``Settings`` as the workers without importing the app (psycopg must load after gevent).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The placeholder shipped in .env.example: refusing it catches copy-paste deployments.
EXAMPLE_SECRET = "replace-me-with-the-output-of-openssl-rand-hex-32"  # noqa: S105
MIN_SECRET_LENGTH = 32
POOLERS = ("none", "pgbouncer")
LOG_FORMATS = ("json", "console")


class SettingsError(ValueError):
    """The environment does not describe a runnable service."""


def env(name: str, *, minimum: float | None = None, maximum: float | None = None) -> Any:
    """Declare the environment variable a field is read from, and its bounds."""
    return {"env": name, "minimum": minimum, "maximum": maximum}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service reads from its environment (docs/configuration.md)."""

    # Empty: embedded PostgreSQL under data_dir, started by `shop serve` (which then sets it).
    database_url: str = field(default="", metadata=env("DATABASE_URL"))
    # Empty is allowed only in embedded mode, where `shop serve` generates one under data_dir.
    jwt_secret: str = field(default="", repr=False, metadata=env("JWT_SECRET"))
    port: int = field(default=8080, metadata=env("PORT", minimum=1, maximum=65535))
    data_dir: Path = field(default=Path(".data"), metadata=env("DATA_DIR"))
    jwt_ttl_seconds: int = field(default=3600, metadata=env("JWT_TTL_SECONDS", minimum=1))
    web_concurrency: int = field(default=2, metadata=env("WEB_CONCURRENCY", minimum=1))
    log_level: str = field(default="INFO", metadata=env("LOG_LEVEL"))
    log_format: str = field(default="console", metadata=env("LOG_FORMAT"))
    debug_token: str | None = field(default=None, repr=False, metadata=env("DEBUG_TOKEN"))
    trace_slow_threshold_ms: float = field(
        default=50.0, metadata=env("TRACE_SLOW_THRESHOLD_MS", minimum=0)
    )
    trace_sample_ratio: float = field(
        default=0.01, metadata=env("TRACE_SAMPLE_RATIO", minimum=0, maximum=1)
    )
    deployment_environment: str = field(default="", metadata=env("DEPLOYMENT_ENVIRONMENT"))
    max_content_length: int = field(
        default=16 * 1024, metadata=env("MAX_CONTENT_LENGTH", minimum=1)
    )
    request_timeout: float = field(default=3.0, metadata=env("REQUEST_TIMEOUT", minimum=0.1))
    max_in_flight: int = field(default=100, metadata=env("MAX_IN_FLIGHT", minimum=1))
    admission_target_ms: float = field(
        default=2.0, metadata=env("ADMISSION_TARGET_MS", minimum=0.1)
    )
    trusted_proxy_hops: int = field(default=0, metadata=env("TRUSTED_PROXY_HOPS", minimum=0))
    db_pool_size: int = field(default=10, metadata=env("DB_POOL_SIZE", minimum=1))
    db_pool_timeout: float = field(default=1.0, metadata=env("DB_POOL_TIMEOUT", minimum=0.01))
    db_connect_timeout: int = field(default=2, metadata=env("DB_CONNECT_TIMEOUT", minimum=2))
    db_statement_timeout: float = field(
        default=2.0, metadata=env("DB_STATEMENT_TIMEOUT", minimum=0.01)
    )
    db_lock_timeout: float = field(default=0.5, metadata=env("DB_LOCK_TIMEOUT", minimum=0.01))
    db_retry_attempts: int = field(default=3, metadata=env("DB_RETRY_ATTEMPTS", minimum=1))
    db_startup_timeout: float = field(default=60.0, metadata=env("DB_STARTUP_TIMEOUT", minimum=0))
    db_pooler: str = field(default="none", metadata=env("DB_POOLER"))
    hot_row_concurrency: int = field(default=2, metadata=env("HOT_ROW_CONCURRENCY", minimum=1))
    login_pair_free_failures: int = field(
        default=5, metadata=env("LOGIN_PAIR_FREE_FAILURES", minimum=1)
    )
    login_account_free_failures: int = field(
        default=20, metadata=env("LOGIN_ACCOUNT_FREE_FAILURES", minimum=1)
    )
    login_address_free_failures: int = field(
        default=50, metadata=env("LOGIN_ADDRESS_FREE_FAILURES", minimum=1)
    )
    login_max_lockout: int = field(default=900, metadata=env("LOGIN_MAX_LOCKOUT", minimum=1))
    password_hash_time_cost: int = field(
        default=2, metadata=env("PASSWORD_HASH_TIME_COST", minimum=1)
    )
    password_hash_memory_kib: int = field(
        default=19 * 1024, metadata=env("PASSWORD_HASH_MEMORY_KIB", minimum=8)
    )
    password_hash_concurrency: int = field(
        default=1, metadata=env("PASSWORD_HASH_CONCURRENCY", minimum=1)
    )
    password_hash_queue: int = field(default=32, metadata=env("PASSWORD_HASH_QUEUE", minimum=0))
    password_hash_nice: int = field(
        default=10, metadata=env("PASSWORD_HASH_NICE", minimum=0, maximum=19)
    )

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            _check_bounds(spec, getattr(self, spec.name))
        if self.jwt_secret or self.database_url:
            check_secret(self.jwt_secret)
        if self.log_format not in LOG_FORMATS:
            raise SettingsError("LOG_FORMAT must be 'json' or 'console'")
        if self.db_pooler not in POOLERS:
            raise SettingsError("DB_POOLER must be 'none' or 'pgbouncer'")
        if self.db_lock_timeout >= self.request_timeout:
            raise SettingsError("DB_LOCK_TIMEOUT must be shorter than REQUEST_TIMEOUT")

    @property
    def embedded(self) -> bool:
        """Whether `shop serve` must start its own PostgreSQL (no DATABASE_URL given)."""
        return not self.database_url

    def require_database(self) -> None:
        """Refuse to build an app without a database URL (embedded mode sets one first)."""
        if not self.database_url:
            raise SettingsError(
                "DATABASE_URL is not set (`shop serve` sets it for the embedded database)"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (``os.environ`` by default)."""
        environ = os.environ if environ is None else environ
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            raw = environ.get(spec.metadata["env"], "")
            if raw != "":
                values[spec.name] = _parse(spec.metadata["env"], hints[spec.name], raw)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """Return the variables that rebuild these settings (for child processes)."""
        exported = {}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if value is not None and value != "":
                exported[spec.metadata["env"]] = str(value)
        return exported


def check_secret(secret: str) -> None:
    """Refuse an empty, short or well-known JWT secret."""
    if not secret:
        raise SettingsError("JWT_SECRET is not set (it is required with DATABASE_URL)")
    if len(secret) < MIN_SECRET_LENGTH:
        raise SettingsError(f"JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters")
    if secret == EXAMPLE_SECRET or len(set(secret)) < 8:
        raise SettingsError("JWT_SECRET is a well-known or low-entropy value")


_PARSERS: dict[Any, tuple[Callable[[str], Any], str]] = {
    int: (int, "an integer"),
    float: (float, "a number"),
    str: (str, "a string"),
    str | None: (str, "a string"),
    Path: (Path, "a path"),
}


def _parse(name: str, kind: Any, raw: str) -> Any:
    parse, noun = _PARSERS[kind]
    if name == "LOG_LEVEL":
        raw = raw.upper()
    try:
        return parse(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {noun}, got {raw!r}") from None


def _check_bounds(spec: dataclasses.Field[Any], value: Any) -> None:
    name, minimum, maximum = (
        spec.metadata["env"],
        spec.metadata["minimum"],
        spec.metadata["maximum"],
    )
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum}, got {value}")
