"""Races with real threads on a real PostgreSQL: money stays safe and nothing fails."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from shop.db.engine import create_db_engine
from shop.domain.errors import InsufficientFunds, ShopError
from shop.services.auth import authenticate
from shop.services.purchases import buy_item
from shop.services.transfers import send_coins
from shop.settings import Settings
from tests.factories import (
    CHEAP_HASHER,
    PASSWORD,
    assert_money_invariants,
    balances,
    create_user,
    random_username,
    sql_uow,
)

THREADS = 16


@pytest.fixture(scope="module")
def race_settings(settings: Settings) -> Settings:
    """The service's settings, with lock waits longer than PostgreSQL's deadlock_timeout (1 s).

    These tests are about money and lock order, not timeouts. With the service's 0.5 s
    lock_timeout a deadlock would surface as a lock timeout, and a busy CI box turned
    16 threads queueing on four rows into lock-timeout retries.
    """
    return dataclasses.replace(
        settings,
        db_lock_timeout=10,
        db_statement_timeout=20,
        request_timeout=30,
        db_pool_size=30,
    )


@pytest.fixture(scope="module")
def engine(race_settings: Settings) -> Iterator[Engine]:
    db_engine = create_db_engine(race_settings)
    yield db_engine
    db_engine.dispose()


def outcome(fn: Any, *args: Any) -> str:
    """Run one use case on its own connection and name how it ended."""
    try:
        fn(*args)
    except ShopError as error:
        return type(error).__name__
    return "ok"


def run_all(calls: list[tuple[Any, ...]]) -> list[str]:
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda call: outcome(*call), calls))


class TestRaces:
    def test_concurrent_buys_by_one_user_never_overdraw(self, engine: Engine) -> None:
        user_id, _ = create_user(engine)
        results = run_all([(buy_item, sql_uow(engine), user_id, "hoody") for _ in range(12)])
        assert results.count("ok") == 3  # 3 x 300 of 1000 coins
        assert results.count(InsufficientFunds.__name__) == 9
        assert balances(engine, [user_id]) == {user_id: 100}
        assert_money_invariants(engine, [user_id])

    def test_concurrent_transfers_from_one_sender_never_overdraw(self, engine: Engine) -> None:
        sender, _ = create_user(engine)
        recipients = [create_user(engine) for _ in range(4)]
        calls = [(send_coins, sql_uow(engine), sender, name, 70) for _, name in recipients * 5]
        results = run_all(calls)
        assert results.count("ok") == 14  # 14 x 70 = 980 <= 1000 < 15 x 70
        assert set(results) == {"ok", InsufficientFunds.__name__}
        assert balances(engine, [sender])[sender] == 20
        assert_money_invariants(engine, [sender] + [uid for uid, _ in recipients])

    def test_criss_crossing_transfers_conserve_coins_and_never_fail(self, engine: Engine) -> None:
        """Opposite transfers (A->B while B->A) must not deadlock: locks go in id order.

        No retry may be needed either: a deadlock costs PostgreSQL's deadlock_timeout
        (1 s) before a retry could hide it, and it would show here as "deadlock".
        """
        users = [create_user(engine) for _ in range(4)]
        rng = random.Random(7)  # noqa: S311 - test data, not security
        retries: list[str] = []
        calls = []
        for _ in range(400):
            (sender, _), (_, recipient) = rng.sample(users, 2)
            amount = rng.randint(1, 40)
            calls.append((send_coins, sql_uow(engine, retries), sender, recipient, amount))
        results = run_all(calls)
        assert set(results) <= {"ok", InsufficientFunds.__name__}
        assert results.count("ok") > 300
        assert retries == []
        assert_money_invariants(engine, [uid for uid, _ in users])

    def test_mixed_buys_and_transfers_conserve_coins(self, engine: Engine) -> None:
        users = [create_user(engine) for _ in range(3)]
        rng = random.Random(11)  # noqa: S311 - test data, not security
        calls: list[tuple[Any, ...]] = []
        for _ in range(300):
            (sender, _), (_, recipient) = rng.sample(users, 2)
            if rng.random() < 0.5:
                calls.append((buy_item, sql_uow(engine), sender, rng.choice(["pen", "cup"])))
            else:
                calls.append((send_coins, sql_uow(engine), sender, recipient, rng.randint(1, 60)))
        results = run_all(calls)
        assert set(results) <= {"ok", InsufficientFunds.__name__}
        assert_money_invariants(engine, [uid for uid, _ in users])

    def test_concurrent_first_logins_create_exactly_one_user(self, engine: Engine) -> None:
        name = random_username()

        def login(password: str) -> int | str:
            try:
                return authenticate(sql_uow(engine), CHEAP_HASHER, name, password).user_id
            except ShopError as error:
                return type(error).__name__

        with ThreadPoolExecutor(THREADS) as pool:
            ids = list(pool.map(login, [PASSWORD] * 16))
        assert len(set(ids)) == 1 and isinstance(ids[0], int)


class TestConcurrentDuplicates:
    def test_duplicates_of_one_keyed_transfer_move_coins_once(self, engine: Engine) -> None:
        alice, _ = create_user(engine)
        bob, bob_name = create_user(engine)
        key = random_username("key")
        results = run_all(
            [(send_coins, sql_uow(engine), alice, bob_name, 70, key) for _ in range(THREADS)]
        )
        assert results == ["ok"] * THREADS
        assert balances(engine, [alice, bob]) == {alice: 930, bob: 1070}

    def test_duplicates_of_one_keyed_purchase_charge_once_across_engines(
        self, engine: Engine, race_settings: Settings
    ) -> None:
        """Two engines stand for two workers (or two replicas) sharing the database."""
        other = create_db_engine(race_settings)
        try:
            user, _ = create_user(engine)
            key = random_username("key")
            calls = [
                (buy_item, sql_uow(engine if i % 2 else other), user, "book", key)
                for i in range(THREADS)
            ]
            assert run_all(calls) == ["ok"] * THREADS
        finally:
            other.dispose()
        assert balances(engine, [user]) == {user: 950}
