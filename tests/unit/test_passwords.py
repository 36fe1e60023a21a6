"""argon2id hashing adapter."""

from __future__ import annotations

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
