"""The per-user bulkhead: few holders per key, bounded waits, no leaks, no deadlocks."""

from __future__ import annotations

import threading
import time

import pytest

from shop.db.hot_rows import FairSlots, HotRows, HotRowTimeout


def soon(seconds: float) -> float:
    return time.monotonic() + seconds


class TestHotRows:
    def test_a_key_admits_per_key_holders_and_the_next_waits_its_deadline_out(self) -> None:
        rows = HotRows(per_key=2)
        with rows.hold(["user:1"], soon(1)), rows.hold(["user:1"], soon(1)):
            started = time.monotonic()
            with pytest.raises(HotRowTimeout), rows.hold(["user:1"], soon(0.05)):
                pass
            assert 0.8 * 0.05 <= time.monotonic() - started + 0.001 < 0.5
        assert len(rows) == 0

    def test_waiters_with_one_deadline_give_up_at_spread_times_within_its_last_fifth(
        self,
    ) -> None:
        rows = HotRows(per_key=1)
        deadline = soon(0.5)
        gave_up: list[float] = []

        def wait_it_out() -> None:
            with pytest.raises(HotRowTimeout), rows.hold(["user:1"], deadline):
                pass
            gave_up.append(deadline - time.monotonic())

        with rows.hold(["user:1"], None):
            waiters = [threading.Thread(target=wait_it_out) for _ in range(8)]
            for waiter in waiters:
                waiter.start()
            for waiter in waiters:
                waiter.join(5)
        assert len(gave_up) == 8
        assert all(-0.05 < early <= 0.2 * 0.5 for early in gave_up)  # the last fifth
        assert max(gave_up) - min(gave_up) > 0.01  # not all at once

    def test_other_keys_are_not_held_up(self) -> None:
        rows = HotRows(per_key=1)
        with rows.hold(["user:1"], None), rows.hold(["user:2"], soon(0)):
            pass

    def test_a_waiter_gets_the_slot_when_it_frees(self) -> None:
        rows = HotRows(per_key=1)
        got = threading.Event()

        def wait_for_it() -> None:
            with rows.hold(["user:1"], soon(5)):
                got.set()

        with rows.hold(["user:1"], None):
            waiter = threading.Thread(target=wait_for_it)
            waiter.start()
            assert not got.wait(0.05)
        waiter.join(5)
        assert got.is_set()
        assert len(rows) == 0

    def test_opposite_pairs_cannot_deadlock(self) -> None:
        rows = HotRows(per_key=1)
        done: list[bool] = []

        def transfer(keys: list[str]) -> None:
            for _ in range(200):
                with rows.hold(keys, soon(5)):
                    pass
            done.append(True)

        threads = [
            threading.Thread(target=transfer, args=(keys,))
            for keys in (["user:1", "name:bob"], ["name:bob", "user:1"])
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert done == [True, True]
        assert len(rows) == 0

    def test_a_timed_out_wait_leaves_no_slot_taken(self) -> None:
        rows = HotRows(per_key=1)

        class Interrupt(Exception):
            pass

        with rows.hold(["user:1"], None):
            with pytest.raises(HotRowTimeout), rows.hold(["user:1", "user:2"], soon(0.01)):
                raise Interrupt  # never reached: user:1 stays busy
        with rows.hold(["user:1"], soon(0)), rows.hold(["user:2"], soon(0)):
            pass
        assert len(rows) == 0


class TestFairness:
    def test_waiters_get_slots_in_arrival_order(self) -> None:
        rows = HotRows(per_key=1)
        order: list[int] = []

        def wait_in_line(n: int) -> None:
            with rows.hold(["user:1"], soon(5)):
                order.append(n)

        with rows.hold(["user:1"], None):
            threads = []
            for n in range(5):
                thread = threading.Thread(target=wait_in_line, args=(n,))
                thread.start()
                time.sleep(0.05)  # it reaches the queue before the next one starts
                threads.append(thread)
        for thread in threads:
            thread.join(5)
        assert order == [0, 1, 2, 3, 4]

    def test_a_released_slot_goes_to_the_waiter_not_to_a_newcomer(self) -> None:
        slots = FairSlots(1)
        assert slots.acquire(0)
        holding, done = threading.Event(), threading.Event()

        def waiter() -> None:
            if slots.acquire(5):
                holding.set()
                done.wait(5)
                slots.release()

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.05)  # the waiter is queued
        slots.release()
        assert not slots.acquire(0)  # handed over already, even before the waiter runs
        assert holding.wait(5)
        done.set()
        thread.join(5)
        assert slots.acquire(0)
