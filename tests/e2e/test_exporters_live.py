"""The exporters the stack's alerts read, live: Debian's node, postgres and blackbox exporters
run here on free loopback ports, against the test PostgreSQL and the real service, and must
expose every series the alerts and dashboards use.

Debian's packages (node 1.5, postgres 0.11, blackbox 0.23) are older than the images the
stack pins; the series below exist under the same names in both.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url

from tests.helpers import ROOT, Server, free_port, installed_binary, wait_until_up

pytestmark = pytest.mark.e2e

BLACKBOX_CONFIG = ROOT / "grafana/blackbox/blackbox.yml"
NODE_SERIES = ["node_filesystem_avail_bytes", "node_filesystem_size_bytes"]
POSTGRES_SERIES = [
    "pg_up",
    "pg_stat_activity_count",
    "pg_stat_activity_max_tx_duration",
    "pg_locks_count",
    "pg_settings_max_connections",
    # WAL archiving into pgBackRest (docs/operations/backups.md): failures and staleness.
    "pg_stat_archiver_failed_count",
    "pg_stat_archiver_last_archive_age",
]


@contextmanager
def exporter(command: list[str], workdir: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run an exporter with ``--web.listen-address`` on a free loopback port; yield its URL
    once /metrics answers."""
    url = f"http://127.0.0.1:{free_port()}"
    log = (workdir / f"{Path(command[0]).name}.log").open("wb")
    process = subprocess.Popen(
        [*command, f"--web.listen-address={url.removeprefix('http://')}"],
        stdout=log,
        stderr=log,
        env=os.environ | (env or {}),
    )
    try:
        try:
            wait_until_up(url, process, timeout=20, path="/metrics")
        except RuntimeError as error:
            log.flush()
            text = (workdir / f"{Path(command[0]).name}.log").read_text()
            pytest.fail(f"{command[0]} did not serve /metrics ({error}):\n{text}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def samples(text: str, name: str) -> list[tuple[str, float]]:
    """Return (labels, value) of every sample of ``name`` in an exposition."""
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)", re.M)
    return [(labels or "", float(value)) for labels, value in pattern.findall(text)]


def postgres_dsn(database_url: str) -> str:
    """The test database's URL the way lib/pq (the exporter's driver) reads it."""
    url = make_url(database_url)
    query = "&".join(f"{key}={value}" for key, value in url.query.items())
    password = f":{url.password}" if url.password else ""
    host = url.host or ""
    port = f":{url.port}" if url.port else ""
    return (
        f"postgresql://{url.username}{password}@{host}{port}/{url.database}?{query}&sslmode=disable"
    )


@pytest.fixture(scope="module")
def blackbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real blackbox exporter with the stack's own modules."""
    binary = installed_binary("prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
    command = [binary, f"--config.file={BLACKBOX_CONFIG}"]
    with exporter(command, tmp_path_factory.mktemp("blackbox")) as url:
        yield url


class TestNodeExporter:
    def test_exposes_the_filesystem_series_the_disk_alerts_read(self, tmp_path: Path) -> None:
        with exporter(
            [installed_binary("prometheus-node-exporter", "prometheus-node-exporter")], tmp_path
        ) as url:
            text = requests.get(f"{url}/metrics", timeout=10).text
        for name in NODE_SERIES:
            found = samples(text, name)
            assert found, f"{name} is missing"
            assert all(value >= 0 for _, value in found)
        (root_size,) = [
            v for labels, v in samples(text, NODE_SERIES[1]) if 'mountpoint="/"' in labels
        ]
        assert root_size > 0


class TestPostgresExporter:
    def test_exposes_the_database_series_the_alerts_read(
        self, database_url: str, tmp_path: Path
    ) -> None:
        binary = installed_binary("prometheus-postgres-exporter", "prometheus-postgres-exporter")
        env = {"DATA_SOURCE_NAME": postgres_dsn(database_url)}
        with exporter([binary], tmp_path, env) as url:
            text = requests.get(f"{url}/metrics", timeout=10).text
        missing = [name for name in POSTGRES_SERIES if not samples(text, name)]
        assert not missing, f"missing: {missing}"
        assert samples(text, "pg_up") == [("", 1.0)]
        assert samples(text, "pg_settings_max_connections")[0][1] > 0
        active = [v for labels, v in samples(text, "pg_stat_activity_count") if "active" in labels]
        assert sum(active) >= 1  # the exporter's own query, at least


class TestBlackboxExporter:
    @pytest.mark.parametrize(
        ("module", "path"), [("http_readyz", "/readyz"), ("http_api_unauthenticated", "/api/info")]
    )
    def test_the_stacks_modules_succeed_against_the_live_service(
        self, blackbox: str, server: Server, module: str, path: str
    ) -> None:
        probe = self._probe(blackbox, module, f"{server.url}{path}")
        assert samples(probe, "probe_success") == [("", 1.0)], probe

    @pytest.mark.parametrize(
        ("module", "path"), [("http_readyz", "/api/info"), ("http_api_unauthenticated", "/readyz")]
    )
    def test_the_modules_fail_on_the_wrong_answer(
        self, blackbox: str, server: Server, module: str, path: str
    ) -> None:
        probe = self._probe(blackbox, module, f"{server.url}{path}")
        assert samples(probe, "probe_success") == [("", 0.0)]

    def test_a_service_that_is_down_fails_the_probe(self, blackbox: str) -> None:
        probe = self._probe(blackbox, "http_readyz", f"http://127.0.0.1:{free_port()}/readyz")
        assert samples(probe, "probe_success") == [("", 0.0)]

    @staticmethod
    def _probe(blackbox: str, module: str, target: str) -> str:
        params = {"module": module, "target": target}
        return requests.get(f"{blackbox}/probe", params=params, timeout=15).text
