"""argon2id hashing adapter."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from shop.domain.errors import TooManyLogins
from shop.security.passwords import Argon2Hasher, offload_for_runtime, run_inline

FAST = Argon2Hasher(time_cost=1, memory_kib=1024)


class TestArgon2Hasher:
    def test_hash_is_salted_argon2id_and_verifies(self) -> None:
        first, second = FAST.hash("s3cret"), FAST.hash("s3cret")
        assert first.startswith("$argon2id$")
        assert first != second
        assert "s3cret" not in first
        assert FAST.verify(first, "s3cret")

    def test_wrong_password_and_garbage_hash_do_not_verify(self) -> None:
        assert not FAST.verify(FAST.hash("s3cret"), "S3cret")
        assert not FAST.verify("not-a-hash", "s3cret")

    def test_a_hash_with_other_parameters_needs_rehash(self) -> None:
        stronger = Argon2Hasher(time_cost=2, memory_kib=2048)
        assert stronger.needs_rehash(FAST.hash("pw"))
        assert not FAST.needs_rehash(FAST.hash("pw"))

    def test_work_goes_through_the_offload_function(self) -> None:
        calls: list[str] = []

        def offload(fn, *args):  # type: ignore[no-untyped-def]
            calls.append(fn.__name__)
            return fn(*args)

        hasher = Argon2Hasher(time_cost=1, memory_kib=1024, offload=offload)
        hasher.verify(hasher.hash("pw"), "pw")
        assert calls == ["hash", "_matches"]


def test_without_gevent_patching_hashes_run_inline() -> None:
    assert offload_for_runtime() is run_inline


# Runs in a fresh interpreter: gevent must patch before anything else is imported.
PRIORITY_UNDER_GEVENT = """
from gevent import monkey
monkey.patch_all()
import os, threading
from shop.security.passwords import offload_for_runtime

def priorities():
    tid = threading.get_native_id()
    return tid, os.getpriority(os.PRIO_PROCESS, tid)

main = threading.get_native_id()
for nice, expected in ((0, 0), (7, 7)):
    tid, seen = offload_for_runtime(nice=nice)(priorities)
    assert tid != main, "the hash must run in a pool thread"
    assert seen == expected, (nice, seen)
assert os.getpriority(os.PRIO_PROCESS, main) == 0, "the event loop keeps its priority"
print("ok")
"""


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux-only")
def test_under_gevent_hashes_run_in_a_pool_thread_at_the_lower_priority() -> None:
    """The worker's event loop must keep its priority; only the hashing thread is lowered."""
    result = subprocess.run(
        [sys.executable, "-c", PRIORITY_UNDER_GEVENT], capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.strip() == b"ok"


def test_logins_beyond_concurrency_and_queue_are_refused_at_once() -> None:
    release, started = threading.Event(), threading.Event()

    def blocking(fn, *args):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(5)
        return fn(*args)

    hasher = Argon2Hasher(time_cost=1, memory_kib=1024, offload=blocking, concurrency=1, queue=1)
    running = threading.Thread(target=hasher.hash, args=("a",))
    running.start()
    assert started.wait(5)
    waiting = threading.Thread(target=hasher.hash, args=("b",))
    waiting.start()
    deadline = time.monotonic() + 5
    while hasher._admitted < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(TooManyLogins):
        hasher.hash("c")
    release.set()
    running.join(5)
    waiting.join(5)
    assert hasher.verify(hasher.hash("d"), "d")  # capacity comes back
