"""Settings read from the environment and validated at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from shop.settings import EXAMPLE_SECRET, Settings, SettingsError

SECRET = "0123456789abcdef0123456789abcdef"


def env(**overrides: str) -> dict[str, str]:
    return {"DATABASE_URL": "postgresql://db/shop", "JWT_SECRET": SECRET, **overrides}


class TestFromEnv:
    def test_defaults(self) -> None:
        settings = Settings.from_env(env())
        assert settings.port == 8080
        assert settings.data_dir == Path(".data")
        assert settings.jwt_ttl_seconds == 3600
        assert settings.log_format == "console"
        assert settings.debug_token is None
        assert settings.password_hash_nice == 10

    def test_reads_every_variable(self) -> None:
        settings = Settings.from_env(
            env(
                PORT="9000",
                DATA_DIR="/srv/shop",
                JWT_TTL_SECONDS="60",
                WEB_CONCURRENCY="4",
                DB_POOL_SIZE="5",
                DB_POOL_TIMEOUT="1.5",
                DB_RETRY_ATTEMPTS="5",
                LOG_LEVEL="debug",
                LOG_FORMAT="json",
                DEBUG_TOKEN="t",
                MAX_CONTENT_LENGTH="1024",
                PASSWORD_HASH_TIME_COST="3",
                PASSWORD_HASH_MEMORY_KIB="65536",
                PASSWORD_HASH_NICE="0",
            )
        )
        assert (settings.port, settings.web_concurrency, settings.db_pool_size) == (9000, 4, 5)
        assert settings.db_pool_timeout == 1.5
        assert settings.log_level == "DEBUG"
        assert settings.log_format == "json"
        assert settings.password_hash_memory_kib == 65536
        assert settings.password_hash_nice == 0

    def test_is_frozen(self) -> None:
        settings = Settings.from_env(env())
        with pytest.raises(AttributeError):
            settings.port = 1  # type: ignore[misc]

    def test_secret_is_not_in_repr(self) -> None:
        assert SECRET not in repr(Settings.from_env(env()))

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"DATABASE_URL": ""}, "DATABASE_URL"),
            ({"JWT_SECRET": ""}, "JWT_SECRET is not set"),
            ({"JWT_SECRET": "short"}, "at least 32"),
            ({"JWT_SECRET": "a" * 40}, "low-entropy"),
            ({"JWT_SECRET": EXAMPLE_SECRET}, "well-known"),
            ({"PORT": "http"}, "PORT must be an integer"),
            ({"PORT": "0"}, "PORT must be a positive"),
            ({"DB_POOL_TIMEOUT": "soon"}, "DB_POOL_TIMEOUT must be a number"),
            ({"DB_RETRY_ATTEMPTS": "0"}, "at least 1"),
            ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
            ({"PASSWORD_HASH_CONCURRENCY": "0"}, "PASSWORD_HASH_CONCURRENCY"),
            ({"PASSWORD_HASH_QUEUE": "-1"}, "PASSWORD_HASH_QUEUE"),
            ({"PASSWORD_HASH_NICE": "-5"}, "PASSWORD_HASH_NICE must be between 0 and 19"),
            ({"PASSWORD_HASH_NICE": "20"}, "PASSWORD_HASH_NICE must be between 0 and 19"),
        ],
    )
    def test_refuses_a_bad_environment(self, overrides: dict[str, str], message: str) -> None:
        with pytest.raises(SettingsError, match=message):
            Settings.from_env(env(**overrides))
