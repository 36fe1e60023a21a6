"""Settings read from the environment and validated at start-up."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from shop.settings import EXAMPLE_SECRET, Settings, SettingsError

SECRET = "0123456789abcdef0123456789abcdef"


def env(**overrides: str) -> dict[str, str]:
    return {"DATABASE_URL": "postgresql://db/shop", "JWT_SECRET": SECRET, **overrides}


class TestFromEnv:
    def test_unset_variables_take_the_documented_defaults(self) -> None:
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

    def test_settings_cannot_change_once_read(self) -> None:
        settings = Settings.from_env(env())
        with pytest.raises(FrozenInstanceError):
            settings.__setattr__("port", 1)

    def test_the_secret_is_not_in_the_repr(self) -> None:
        assert SECRET not in repr(Settings.from_env(env()))

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"JWT_SECRET": ""}, "JWT_SECRET is not set"),
            ({"JWT_SECRET": "short"}, "at least 32"),
            ({"JWT_SECRET": "a" * 40}, "low-entropy"),
            ({"JWT_SECRET": EXAMPLE_SECRET}, "well-known"),
            ({"PORT": "http"}, "PORT must be an integer"),
            ({"PORT": "0"}, "PORT must be at least 1"),
            ({"PORT": "70000"}, "PORT must be at most 65535"),
            ({"REQUEST_TIMEOUT": "0"}, "REQUEST_TIMEOUT must be at least 0.1"),
            ({"DB_CONNECT_TIMEOUT": "1"}, "DB_CONNECT_TIMEOUT must be at least 2"),
            ({"DB_LOCK_TIMEOUT": "5"}, "DB_LOCK_TIMEOUT must be shorter than REQUEST_TIMEOUT"),
            ({"DB_POOLER": "pgpool"}, "DB_POOLER must be 'none' or 'pgbouncer'"),
            ({"HOT_ROW_CONCURRENCY": "0"}, "HOT_ROW_CONCURRENCY must be at least 1"),
            ({"DB_POOL_TIMEOUT": "soon"}, "DB_POOL_TIMEOUT must be a number"),
            ({"DB_RETRY_ATTEMPTS": "0"}, "at least 1"),
            ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
            ({"PASSWORD_HASH_CONCURRENCY": "0"}, "PASSWORD_HASH_CONCURRENCY"),
            ({"PASSWORD_HASH_QUEUE": "-1"}, "PASSWORD_HASH_QUEUE"),
            ({"PASSWORD_HASH_NICE": "-5"}, "PASSWORD_HASH_NICE must be at least 0"),
            ({"PASSWORD_HASH_NICE": "20"}, "PASSWORD_HASH_NICE must be at most 19"),
        ],
    )
    def test_refuses_a_bad_environment(self, overrides: dict[str, str], message: str) -> None:
        with pytest.raises(SettingsError, match=message):
            Settings.from_env(env(**overrides))


class TestEmbeddedMode:
    def test_no_database_url_means_embedded_and_the_secret_may_be_generated(self) -> None:
        settings = Settings.from_env({})
        assert settings.embedded
        with pytest.raises(SettingsError, match="DATABASE_URL is not set"):
            settings.require_database()

    def test_a_given_secret_is_still_checked_in_embedded_mode(self) -> None:
        with pytest.raises(SettingsError, match="at least 32"):
            Settings.from_env({"JWT_SECRET": "short"})

    def test_to_env_round_trips_every_setting(self) -> None:
        settings = Settings.from_env(env(PORT="9000", DEBUG_TOKEN="t", REQUEST_TIMEOUT="2.5"))
        assert Settings.from_env(settings.to_env()) == settings
