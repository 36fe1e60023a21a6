"""Random, unique test data so tests run in any order and in parallel, and the database
set-ups the integration and API tests share (the other plain helpers are in helpers.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from shop.db.migrate import migration_engine, upgrade
from shop.db.unit_of_work import ConnectionScope, SqlUnitOfWork, UnitPolicy
from shop.security.passwords import Argon2Hasher
from shop.services.auth import authenticate
from shop.services.info import get_info
from shop.services.unit_of_work import UnitOfWork

PASSWORD = "correct horse battery staple"
# Cheap argon2id parameters keep hundreds of sign-ups fast; production cost is set by env.
HASH_TIME_COST = 1
HASH_MEMORY_KIB = 1024
CHEAP_HASHER = Argon2Hasher(time_cost=HASH_TIME_COST, memory_kib=HASH_MEMORY_KIB)


def random_username(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wallet(uow: UnitOfWork, user_id: int) -> dict[str, Any]:
    """The GET /api/info document of ``user_id``, parsed."""
    document: dict[str, Any] = json.loads(get_info(uow, user_id).json)
    return document


def random_address() -> str:
    """A client address of its own, so login throttling never couples two tests."""
    return f"addr-{uuid.uuid4().hex[:12]}"


def random_ip() -> str:
    """A random address from an IPv6 documentation prefix (2001:db8::/32)."""
    suffix = uuid.uuid4().hex
    return "2001:db8:" + ":".join(suffix[i : i + 4] for i in range(0, 24, 4))


def sql_uow(
    engine: Engine, retries: list[str] | None = None, policy: UnitPolicy | None = None
) -> SqlUnitOfWork:
    """Return a unit of work that takes a pooled connection per transaction and gives it back."""
    on_retry = None if retries is None else retries.append
    policy = policy or UnitPolicy(on_retry=on_retry)
    return SqlUnitOfWork(ConnectionScope(engine), policy, release_after_each=True)


def create_user(engine: Engine, username: str | None = None) -> tuple[int, str]:
    """Sign a new user up through the real service and return (id, username)."""
    name = username or random_username()
    uow = sql_uow(engine)
    return authenticate(uow, CHEAP_HASHER, name, PASSWORD, random_address()).user_id, name


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


@contextmanager
def scratch_database(admin_engine: Engine, database_url: str) -> Iterator[str]:
    """Create an empty database next to the test one; yield its URL; drop it afterwards."""
    name = f"scratch_{uuid.uuid4().hex[:12]}"
    with admin_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')


def upgrade_to(database_url: str, revision: str) -> None:
    """Migrate a database to ``revision`` (not necessarily the newest)."""
    engine = migration_engine(database_url)
    try:
        upgrade(engine, revision)
    finally:
        engine.dispose()
