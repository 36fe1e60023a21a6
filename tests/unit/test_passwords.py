"""argon2id hashing adapter."""

from __future__ import annotations

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
