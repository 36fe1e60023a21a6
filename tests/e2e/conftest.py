"""A real gunicorn + gevent process on a free port, against the throwaway database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import DEBUG_TOKEN, Server, running_server, server_env
from tests.otlp_receiver import OtlpReceiver

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e ``e2e``, so ``-m "not e2e"`` leaves all of them out."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def server(
    database_url: str, jwt_secret: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """Two workers with everything on: JSON logs to a file, OTLP export, /debug."""
    receiver = OtlpReceiver().start()
    workdir = tmp_path_factory.mktemp("server")
    env = server_env(
        DATABASE_URL=database_url,
        JWT_SECRET=jwt_secret,
        LOG_FORMAT="json",
        DEBUG_TOKEN=DEBUG_TOKEN,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME="shop-under-test",
        OTEL_BSP_SCHEDULE_DELAY="100",
        PROMETHEUS_MULTIPROC_DIR=str(workdir / "metrics"),
    )
    with running_server(env, workdir, receiver) as running:
        yield running
