"""Random, unique test data so tests run in any order and in parallel."""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shop.db.unit_of_work import ConnectionScope, SqlUnitOfWork
from shop.security.passwords import Argon2Hasher
from shop.services.auth import authenticate
from shop.services.info import get_info
from shop.services.unit_of_work import UnitOfWork

PASSWORD = "correct horse battery staple"
CHEAP_HASHER = Argon2Hasher(time_cost=1, memory_kib=1024)


def random_username(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wallet(uow: UnitOfWork, user_id: int) -> dict[str, Any]:
    """The GET /api/info document of ``user_id``, parsed."""
    document: dict[str, Any] = json.loads(get_info(uow, user_id).json)
    return document


def sql_uow(engine: Engine, retries: list[str] | None = None) -> SqlUnitOfWork:
    """Return a unit of work that takes a pooled connection per transaction and gives it back."""
    on_retry = None if retries is None else retries.append
    return SqlUnitOfWork(ConnectionScope(engine), on_retry=on_retry, release_after_each=True)


def create_user(engine: Engine, username: str | None = None) -> tuple[int, str]:
    """Sign a new user up through the real service and return (id, username)."""
    name = username or random_username()
    uow = sql_uow(engine)
    return authenticate(uow, CHEAP_HASHER, name, PASSWORD).user_id, name


def balances(engine: Engine, user_ids: list[int]) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, balance FROM users WHERE id = ANY(:ids)"), {"ids": user_ids}
        )
        return {row.id: row.balance for row in rows}


def coins_spent(engine: Engine, user_ids: list[int]) -> int:
    with engine.connect() as conn:
        spent = conn.execute(
            sa.text("SELECT coalesce(sum(spent), 0) FROM inventory WHERE user_id = ANY(:ids)"),
            {"ids": user_ids},
        ).scalar_one()
        return int(spent)


def assert_money_invariants(engine: Engine, user_ids: list[int]) -> None:
    """No negative balance; balances plus merch spending equal 1000 coins per user."""
    current = balances(engine, user_ids)
    assert all(balance >= 0 for balance in current.values()), current
    assert sum(current.values()) + coins_spent(engine, user_ids) == 1000 * len(user_ids)
