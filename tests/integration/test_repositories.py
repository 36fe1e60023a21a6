"""Repositories and the unit of work on a real PostgreSQL: what only SQL can show (the
contract both implementations share is in test_storage_contract.py)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from shop.db.unit_of_work import ConnectionScope, SqlUnitOfWork
from shop.services.auth import authenticate
from shop.services.purchases import buy_item
from shop.services.transfers import send_coins
from tests.factories import (
    CHEAP_HASHER,
    create_user,
    random_address,
    random_username,
    sql_uow,
    wallet,
)


def checked_out(engine: Engine) -> int:
    """Return how many of the engine's pooled connections are lent out."""
    assert isinstance(engine.pool, QueuePool)
    return engine.pool.checkedout()


class TestUsers:
    def test_unicode_names_round_trip(self, engine: Engine) -> None:
        user_id, name = create_user(engine, random_username("Дмитрий-李-🙂"))
        with sql_uow(engine) as uow:
            stored = uow.users.credentials(name)
        assert stored is not None and stored.user_id == user_id


class TestGroupedHistory:
    def test_history_is_grouped_per_counterparty_and_sorted(self, engine: Engine) -> None:
        alice, alice_name = create_user(engine)
        bob, bob_name = create_user(engine, "b-" + random_username())
        carol, carol_name = create_user(engine, "c-" + random_username())
        for amount in (1, 2, 3):
            send_coins(sql_uow(engine), alice, bob_name, amount)
        send_coins(sql_uow(engine), alice, carol_name, 10)
        send_coins(sql_uow(engine), carol, alice_name, 4)
        buy_item(sql_uow(engine), alice, "pen")
        buy_item(sql_uow(engine), alice, "cup")
        buy_item(sql_uow(engine), alice, "pen")

        assert wallet(sql_uow(engine), alice) == {
            "coins": 1000 - 6 - 10 + 4 - 40,
            "inventory": [{"type": "cup", "quantity": 1}, {"type": "pen", "quantity": 2}],
            "coinHistory": {
                "received": [{"fromUser": carol_name, "amount": 4}],
                "sent": [{"toUser": bob_name, "amount": 6}, {"toUser": carol_name, "amount": 10}],
            },
        }

    def test_ledger_keeps_every_transfer_for_audit(self, engine: Engine) -> None:
        alice, _ = create_user(engine)
        bob, bob_name = create_user(engine)
        for amount in (5, 7):
            send_coins(sql_uow(engine), alice, bob_name, amount)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT amount FROM transfers WHERE from_user_id = :a ORDER BY id"),
                {"a": alice},
            ).scalars()
            assert list(rows) == [5, 7]


class TestSchemaGuards:
    def test_balance_can_never_be_negative_even_by_direct_sql(
        self, engine: Engine, admin_engine: Engine
    ) -> None:
        user_id, _ = create_user(engine)
        with pytest.raises(sa.exc.IntegrityError), admin_engine.begin() as conn:
            conn.execute(sa.text("UPDATE users SET balance = -1 WHERE id = :id"), {"id": user_id})


class TestLoginsHoldNoConnectionWhileHashing:
    def test_the_pool_has_the_connection_back_during_the_hash(self, engine: Engine) -> None:
        scope = ConnectionScope(engine)
        seen: list[int] = []

        class WatchingHasher:
            def hash(self, password: str) -> str:
                seen.append(checked_out(engine))
                return CHEAP_HASHER.hash(password)

            def verify(self, password_hash: str, password: str) -> bool:
                seen.append(checked_out(engine))
                return CHEAP_HASHER.verify(password_hash, password)

            def needs_rehash(self, password_hash: str) -> bool:
                return False

        before = checked_out(engine)
        name = random_username()
        authenticate(SqlUnitOfWork(scope), WatchingHasher(), name, "pw", random_address())
        authenticate(SqlUnitOfWork(scope), WatchingHasher(), name, "pw", random_address())
        scope.release()
        assert seen == [before, before]
