"""Saturation metrics: event-loop lag, hash queue depth, configured workers, per-worker pool."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading

import pytest
from prometheus_client import REGISTRY

from observability import metrics
from observability.process import LAG_WINDOW_SECONDS, LagWindow, start_sampling
from shop.domain.errors import TooManyLogins
from shop.security.passwords import Argon2Hasher
from shop.settings import Settings


def sample(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    assert value is not None, name
    return value


class TestLagWindow:
    def test_reports_the_worst_lag_of_the_window(self) -> None:
        window = LagWindow(started=0.0)
        assert window.add(0.002, now=1.0) == 0.002
        assert window.add(0.300, now=2.0) == 0.300
        assert window.add(0.001, now=3.0) == 0.300

    def test_keeps_a_stall_visible_through_the_next_window(self) -> None:
        window = LagWindow(started=0.0)
        window.add(0.5, now=LAG_WINDOW_SECONDS - 1)
        assert window.add(0.001, now=LAG_WINDOW_SECONDS + 1) == 0.5
        assert window.add(0.001, now=2 * LAG_WINDOW_SECONDS + 2) == 0.001

    def test_forgets_the_window_before_a_stall_longer_than_a_window(self) -> None:
        window = LagWindow(started=0.0)
        window.add(0.9, now=1.0)
        assert window.add(40.0, now=45.0) == 40.0
        assert window.add(0.001, now=45.0 + LAG_WINDOW_SECONDS) == 40.0
        assert window.add(0.001, now=45.0 + 2 * LAG_WINDOW_SECONDS) == 0.001


# Runs in a fresh interpreter: a real gevent hub whose loop a blocking call holds for 0.5 s.
BLOCKED_LOOP = """
from gevent import monkey
monkey.patch_all()
import time
import gevent
from prometheus_client import REGISTRY
import shop.settings  # the package first: today shop/__init__.py imports observability
from observability import process
process.start_lag_probe()
gevent.sleep(0.3)
monkey.get_original("time", "sleep")(0.5)  # blocks the whole event loop
gevent.sleep(0.3)
print(REGISTRY.get_sample_value("shop_event_loop_lag_max_seconds"))
print(REGISTRY.get_sample_value("shop_event_loop_lag_seconds_count"))
"""


def test_the_probe_measures_a_blocked_gevent_loop() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_LOOP], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    worst, probes = (float(line) for line in result.stdout.split())
    assert 0.35 <= worst < 1.0
    assert probes >= 4


class TestHashQueueDepth:
    def test_a_login_holds_a_place_while_it_hashes_and_gives_it_back(self) -> None:
        inside = threading.Event()
        release = threading.Event()
        depths: list[float] = []

        def offload(fn, *args):  # type: ignore[no-untyped-def]
            inside.set()
            release.wait(timeout=10)
            return fn(*args)

        hasher = Argon2Hasher(time_cost=1, memory_kib=1024, offload=offload, queue=0)
        before = sample("shop_password_hash_queue_depth")
        login = threading.Thread(target=hasher.hash, args=("pw",))
        login.start()
        assert inside.wait(timeout=10)
        depths.append(sample("shop_password_hash_queue_depth"))
        with pytest.raises(TooManyLogins):
            hasher.hash("refused")
        depths.append(sample("shop_password_hash_queue_depth"))
        release.set()
        login.join(timeout=10)
        assert depths == [before + 1, before + 1]
        assert sample("shop_password_hash_queue_depth") == before


def test_sampling_publishes_the_configured_workers_and_hash_queue_capacity() -> None:
    settings = Settings(
        database_url="postgresql://unused/shop",
        jwt_secret=secrets.token_hex(32),
        web_concurrency=5,
        password_hash_concurrency=2,
        password_hash_queue=7,
    )
    start_sampling(settings)
    assert sample("shop_workers_configured") == 5
    assert sample("shop_password_hash_queue_capacity") == 9


def test_pool_size_is_set_not_added_per_engine() -> None:
    """Each worker has one engine: its pool size is a value, not a running sum."""
    metrics.DB_POOL_SIZE.set(0)
    from sqlalchemy import create_engine

    for _ in range(2):
        metrics.watch_engine(create_engine("sqlite://"), pool_size=4)
    assert sample("shop_db_pool_size") == 4
