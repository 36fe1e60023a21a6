"""argon2id hashing adapter."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from shop.domain.errors import TooManyLogins
from shop.security import passwords
from shop.security.passwords import Argon2Hasher, offload_for_runtime, run_inline
from tests.factories import CHEAP_HASHER, HASH_MEMORY_KIB, HASH_TIME_COST
from tests.helpers import eventually

T = TypeVar("T")


class TestArgon2Hasher:
    def test_hash_is_salted_argon2id_and_verifies(self) -> None:
        first, second = CHEAP_HASHER.hash("s3cret"), CHEAP_HASHER.hash("s3cret")
        assert first.startswith("$argon2id$")
        assert first != second
        assert "s3cret" not in first
        assert CHEAP_HASHER.verify(first, "s3cret")

    def test_wrong_password_and_garbage_hash_do_not_verify(self) -> None:
        assert not CHEAP_HASHER.verify(CHEAP_HASHER.hash("s3cret"), "S3cret")
        assert not CHEAP_HASHER.verify("not-a-hash", "s3cret")

    def test_a_hash_with_other_parameters_needs_rehash(self) -> None:
        stronger = Argon2Hasher(time_cost=2, memory_kib=2048)
        assert stronger.needs_rehash(CHEAP_HASHER.hash("pw"))
        assert not CHEAP_HASHER.needs_rehash(CHEAP_HASHER.hash("pw"))

    def test_work_goes_through_the_offload_function(self) -> None:
        calls: list[str] = []

        def offload(fn: Callable[..., T], *args: Any) -> T:
            calls.append(fn.__name__)
            return fn(*args)

        hasher = Argon2Hasher(HASH_TIME_COST, HASH_MEMORY_KIB, offload=offload)
        hasher.verify(hasher.hash("pw"), "pw")
        assert calls == ["hash", "_matches"]


# Runs in a fresh interpreter: gevent must patch before anything else is imported.
PRIORITY_UNDER_GEVENT = """
from gevent import monkey
monkey.patch_all()
import os, threading
import gevent
from shop.security.passwords import offload_for_runtime

def priorities():
    tid = threading.get_native_id()
    return tid, os.getpriority(os.PRIO_PROCESS, tid)

main = threading.get_native_id()
base = os.getpriority(os.PRIO_PROCESS, main)  # a niced CI runner starts above 0
lowered = offload_for_runtime(nice=7)
for _ in range(3):  # the same pool thread again: lowered once, never further
    tid, seen = lowered(priorities)
    assert tid != main, "the hash must run in a pool thread"
    assert seen == min(19, base + 7), (base, seen)
assert offload_for_runtime(nice=0)(priorities)[1] == base
# The hub's pool also resolves host names: it must keep the worker's priority.
assert gevent.get_hub().threadpool.apply(priorities)[1] == base
assert os.getpriority(os.PRIO_PROCESS, main) == base, "the event loop keeps its priority"
print("ok")
"""


class TestOffloading:
    def test_without_gevent_patching_hashes_run_inline(self) -> None:
        assert offload_for_runtime() is run_inline

    @pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux-only")
    def test_under_gevent_hashes_run_in_a_pool_thread_at_the_lower_priority(self) -> None:
        """The worker's event loop must keep its priority; only the hashing thread is lowered."""
        result = subprocess.run(
            [sys.executable, "-c", PRIORITY_UNDER_GEVENT], capture_output=True, timeout=60
        )
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.strip() == b"ok"

    @pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux-only")
    def test_a_refused_priority_change_still_hashes_and_says_so(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The kernel refusal is simulated (os.setpriority mocked): as root it cannot happen."""

        def refuse(*args: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(passwords, "_priority_failed", False)
        monkeypatch.setattr(os, "setpriority", refuse)
        with caplog.at_level(logging.WARNING, logger="shop.security.passwords"):
            assert passwords._at_priority(19, lambda: "hashed") == "hashed"
            assert passwords._at_priority(19, lambda: "again") == "again"
        assert caplog.text.count("could not lower the priority") == 1


class TestAdmission:
    def test_logins_beyond_concurrency_and_queue_are_refused_at_once(self) -> None:
        release, started = threading.Event(), threading.Event()

        def blocking(fn: Callable[..., T], *args: Any) -> T:
            started.set()
            release.wait(5)
            return fn(*args)

        hasher = Argon2Hasher(
            HASH_TIME_COST, HASH_MEMORY_KIB, offload=blocking, concurrency=1, queue=1
        )
        running = threading.Thread(target=hasher.hash, args=("a",))
        running.start()
        assert started.wait(5)
        waiting = threading.Thread(target=hasher.hash, args=("b",))
        waiting.start()
        assert eventually(lambda: hasher._admitted == 2, timeout=5)  # one hashing, one queued
        with pytest.raises(TooManyLogins):
            hasher.hash("c")
        release.set()
        running.join(5)
        waiting.join(5)
        assert hasher.verify(hasher.hash("d"), "d")  # capacity comes back
