"""The k6 load kit end to end: ``python -m ammo`` against a real service, k6 and Prometheus.

Real parts only: the kit starts its own embedded PostgreSQL and the shop (gunicorn + gevent),
seeds users, runs the real k6 binary at a low rate for a few seconds, streams to a real
Debian Prometheus with the remote-write receiver and native histograms on, and checks the
money invariants. Then every query of the load-test dashboard is run against that Prometheus.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ammo.k6run import prometheus_features
from ammo.tank import read_phantom
from tests.helpers import ROOT, Server, free_port, stop, wait_until_up

pytestmark = pytest.mark.e2e
DASHBOARD = ROOT / "grafana/dashboards/load-test.json"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's Prometheus with the flags the bundled one needs for k6 (remote write, native)."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("SKIPPED CHECK: Debian's `prometheus` is not installed (.ci/run installs it)")
    workdir = tmp_path_factory.mktemp("prometheus")
    (workdir / "prometheus.yml").write_text("global: {scrape_interval: 15s}\n")
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        binary, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir}",
        f"--web.listen-address={url.removeprefix('http://')}",
        "--web.enable-remote-write-receiver", "--enable-feature=native-histograms",
    ]  # fmt: skip
    with (workdir / "log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        wait_until_up(url, process, path="/-/ready")
        yield url
    finally:
        stop(process)


def ammo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, K6_PROMETHEUS_RW_PUSH_INTERVAL="1s", PASSWORD_HASH_TIME_COST="1",
               PASSWORD_HASH_MEMORY_KIB="1024")  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "ammo", *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, prometheus: str) -> Path:
    """One short info-heavy run of the kit: 40 req/s for 4 s, 30 users, streamed."""
    out = tmp_path_factory.mktemp("bench")
    done = ammo(
        "run", "--profile", "info-heavy", "--rates", "40", "--duration", "4", "--warmup", "0",
        "--users", "30", "--no-tracing", "--data-dir", str(out / "data"), "--out", str(out),
        "--prometheus", prometheus,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def record(run_dir: Path) -> dict[str, Any]:
    [run] = [json.loads(line) for line in (run_dir / "runs.jsonl").read_text().splitlines()]
    assert isinstance(run, dict)
    return run


class TestRun:
    def test_every_request_is_answered_with_an_expected_status(self, run_dir: Path) -> None:
        result = record(run_dir)["result"]
        assert 140 <= result["requests"] <= 170  # 40 req/s for 4 s, open model
        assert result["failed"] == 0 and result["check_failures"] == 0
        assert set(result["ops"]) == {"info", "buy", "send"}

    def test_cpu_is_recorded_per_component(self, run_dir: Path) -> None:
        cpu = record(run_dir)["cpu_seconds"]
        assert cpu["service"] > 0 and cpu["postgres"] > 0 and cpu["k6"] > 0

    def test_money_invariants_were_checked_after_the_run(self, run_dir: Path) -> None:
        assert "30 users" in record(run_dir)["invariants"]


def dashboard_queries(testid: str) -> list[tuple[str, str]]:
    """Every (panel title, expr) of the load-test dashboard, variables filled in."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [
        (panel["title"], target["expr"].replace("$testid", testid)
         .replace("$__rate_interval", "30s").replace("$__range", "10m"))
        for panel in panels for target in panel["targets"]
    ]  # fmt: skip


class TestStreamedToPrometheus:
    def test_the_kit_sees_that_prometheus_stores_native_histograms(self, prometheus: str) -> None:
        assert prometheus_features(prometheus) is True

    def test_every_dashboard_query_runs_and_the_k6_ones_have_data(
        self, run_dir: Path, prometheus: str
    ) -> None:
        testid = f"{run_dir.name}-info-heavy-40"
        empty = []
        for title, expr in dashboard_queries(testid):
            reply = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
            assert reply.status_code == 200, (title, expr, reply.text)
            data = reply.json()["data"]["result"]
            if not data and "k6_" in expr:
                empty.append(title)
        # Drops are sent only once something was dropped; trend stats only without native
        # histograms; the shop's own series only when Prometheus scrapes it.
        assert set(empty) <= {"p99 since the start of the run (trend stats)"}, empty


@pytest.fixture(scope="module")
def overload_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The overload command at a given capacity of 30 req/s, then at 2x, with the capture."""
    if shutil.which("tcpdump") is None:
        pytest.skip("SKIPPED CHECK: Debian's `tcpdump` is not installed (.ci/run installs it)")
    out = tmp_path_factory.mktemp("overload")
    done = ammo(
        "overload", "--profile", "info-heavy", "--capacity", "30", "--multiples", "2",
        "--duration", "3", "--warmup", "0", "--users", "30", "--no-tracing", "--capture",
        "--data-dir", str(out / "data"), "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (out / "stdout").write_text(done.stdout)
    return out


class TestOverload:
    def test_prints_a_row_per_run_against_the_capacity(self, overload_dir: Path) -> None:
        table = (overload_dir / "stdout").read_text()
        assert "capacity 30 req/s" in table
        rows = [line for line in table.splitlines() if line.startswith("| 30 ") or
                line.startswith("| 60 ")]  # fmt: skip
        assert len(rows) == 2, table
        assert (overload_dir / "overload.png").stat().st_size > 0

    def test_records_both_clocks_and_the_wire_for_every_run(self, overload_dir: Path) -> None:
        runs = [json.loads(line) for line in (overload_dir / "runs.jsonl").read_text().splitlines()]
        assert [run["rate"] for run in runs] == [30, 60]
        for run in runs:
            assert run["result"]["statuses"]["200"]["requests"] > 0
            assert run["server"]["statuses"]["200"]["count"] > 0
            assert run["wire"]["200"]["count"] > 0
            assert run["invariants"].endswith("0 negative")
        assert "overload" in runs[-1] and runs[-1]["overload"]["no_answer"] == 0
        assert not list(overload_dir.glob("*.pcap")), "captures are digested, then removed"


class TestTankAmmo:
    def test_ammo_for_a_running_service_carries_tokens_it_accepts(
        self, server: Server, tmp_path: Path
    ) -> None:
        """The README recipe: ammo made from the running service's URL alone, then replayed."""
        ammo_file = tmp_path / "ammo.txt"
        done = ammo(
            "tank-ammo", "--url", server.url, "--users", "5", "--count", "40",
            "--profile", "write-heavy", "--ammo", str(ammo_file), "--out", str(tmp_path),
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        statuses = replay(server.url, ammo_file.read_bytes())
        assert len(statuses) == 40
        assert set(statuses) <= {200, 400}, statuses  # 400 only for a user out of coins
        assert statuses.count(200) >= 30


def replay(url: str, ammo_bytes: bytes) -> list[int]:
    """Send each phantom record's raw bytes, as yandex-tank would; return the statuses."""
    host, port = url.removeprefix("http://").split(":")
    statuses = []
    for _, raw in read_phantom(ammo_bytes):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(raw.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n", 1))
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        statuses.append(int(reply.split(b" ", 2)[1]))
    return statuses
