"""Typed, frozen settings read once from the environment and validated at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The placeholder shipped in .env.example: refusing it catches copy-paste deployments.
EXAMPLE_SECRET = "replace-me-with-the-output-of-openssl-rand-hex-32"  # noqa: S105
MIN_SECRET_LENGTH = 32


class SettingsError(ValueError):
    """The environment does not describe a runnable service."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service reads from its environment."""

    database_url: str
    jwt_secret: str = field(repr=False)
    port: int = 8080
    data_dir: Path = Path(".data")
    jwt_ttl_seconds: int = 3600
    web_concurrency: int = 2
    db_pool_size: int = 10
    db_pool_timeout: float = 5.0
    db_retry_attempts: int = 3
    db_startup_timeout: float = 60.0
    log_level: str = "INFO"
    log_format: str = "console"
    debug_token: str | None = field(default=None, repr=False)
    max_content_length: int = 16 * 1024
    password_hash_time_cost: int = 2
    password_hash_memory_kib: int = 19 * 1024
    password_hash_concurrency: int = 1
    password_hash_queue: int = 32
    password_hash_nice: int = 10

    def __post_init__(self) -> None:
        if not self.database_url:
            raise SettingsError("DATABASE_URL is empty")
        check_secret(self.jwt_secret)
        if self.log_format not in ("json", "console"):
            raise SettingsError("LOG_FORMAT must be 'json' or 'console'")
        positive = ("port", "jwt_ttl_seconds", "web_concurrency", "db_pool_size")
        for name in (*positive, "password_hash_concurrency"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name.upper()} must be a positive integer")
        if self.password_hash_queue < 0:
            raise SettingsError("PASSWORD_HASH_QUEUE must not be negative")
        if not 0 <= self.password_hash_nice <= 19:
            raise SettingsError("PASSWORD_HASH_NICE must be between 0 and 19")
        if self.db_retry_attempts < 1:
            raise SettingsError("DB_RETRY_ATTEMPTS must be at least 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (``os.environ`` by default)."""
        env = os.environ if env is None else env
        database_url = env.get("DATABASE_URL", "")
        if not database_url:
            raise SettingsError(
                "DATABASE_URL is not set (run.sh sets it for the embedded database)"
            )
        return cls(
            database_url=database_url,
            jwt_secret=env.get("JWT_SECRET", ""),
            port=_int(env, "PORT", 8080),
            data_dir=Path(env.get("DATA_DIR", ".data")),
            jwt_ttl_seconds=_int(env, "JWT_TTL_SECONDS", 3600),
            web_concurrency=_int(env, "WEB_CONCURRENCY", 2),
            db_pool_size=_int(env, "DB_POOL_SIZE", 10),
            db_pool_timeout=_float(env, "DB_POOL_TIMEOUT", 5.0),
            db_retry_attempts=_int(env, "DB_RETRY_ATTEMPTS", 3),
            db_startup_timeout=_float(env, "DB_STARTUP_TIMEOUT", 60.0),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            log_format=env.get("LOG_FORMAT", "console"),
            debug_token=env.get("DEBUG_TOKEN") or None,
            max_content_length=_int(env, "MAX_CONTENT_LENGTH", 16 * 1024),
            password_hash_time_cost=_int(env, "PASSWORD_HASH_TIME_COST", 2),
            password_hash_memory_kib=_int(env, "PASSWORD_HASH_MEMORY_KIB", 19 * 1024),
            password_hash_concurrency=_int(env, "PASSWORD_HASH_CONCURRENCY", 1),
            password_hash_queue=_int(env, "PASSWORD_HASH_QUEUE", 32),
            password_hash_nice=_int(env, "PASSWORD_HASH_NICE", 10),
        )


def check_secret(secret: str) -> None:
    """Refuse an empty, short or well-known JWT secret."""
    if not secret:
        raise SettingsError("JWT_SECRET is not set")
    if len(secret) < MIN_SECRET_LENGTH:
        raise SettingsError(f"JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters")
    if secret == EXAMPLE_SECRET or len(set(secret)) < 8:
        raise SettingsError("JWT_SECRET is a well-known or low-entropy value")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
