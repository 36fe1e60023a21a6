"""The unit of work keeps its promise on a real PostgreSQL: rolled back unless committed."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import Engine

from shop.db.statements import Sql
from shop.db.unit_of_work import ConnectionScope, SqlUnitOfWork
from shop.services.unit_of_work import TransientStorageError
from tests.factories import create_user, random_username, sql_uow
from tests.helpers import eventually

SNEAKY_WRITE = Sql(
    "UPDATE users", "UPDATE users SET balance = balance WHERE id = %(id)s", writes=False
)


def backend_pid(scope: ConnectionScope) -> int:
    connection = scope.get().dbapi_connection
    assert connection is not None
    row = connection.cursor().execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


# Opens the transaction (a write), then fails on the server.
FAILING_WRITE = Sql("SELECT", "SELECT 1 / 0", writes=True)


def backend_state(engine: Engine, pid: int) -> str | None:
    with engine.connect() as conn:
        state = conn.exec_driver_sql(
            f"SELECT state FROM pg_stat_activity WHERE pid = {pid}"
        ).scalar_one_or_none()
        return None if state is None else str(state)


def exists(engine: Engine, username: str) -> bool:
    with sql_uow(engine) as uow:
        return uow.users.credentials(username) is not None


class TestRollback:
    def test_uncommitted_work_is_rolled_back(self, engine: Engine) -> None:
        name = random_username()
        with sql_uow(engine) as uow:
            uow.users.create(name, "hash", 1000)
        assert not exists(engine, name)

    def test_work_is_rolled_back_on_error(self, engine: Engine) -> None:
        name = random_username()
        with pytest.raises(ZeroDivisionError), sql_uow(engine) as uow:
            uow.users.create(name, "hash", 1000)
            _ = 1 / 0
        assert not exists(engine, name)

    def test_committed_work_stays(self, engine: Engine) -> None:
        name = random_username()
        with sql_uow(engine) as uow:
            uow.users.create(name, "hash", 1000)
            uow.commit()
        assert exists(engine, name)

    def test_several_writes_commit_together(self, engine: Engine) -> None:
        first, second = random_username(), random_username()
        with sql_uow(engine) as uow:
            uow.users.create(first, "hash", 1000)
            uow.users.create(second, "hash", 1000)
        assert not exists(engine, first) and not exists(engine, second)

    def test_commit_outside_the_block_is_a_bug(self, engine: Engine) -> None:
        with pytest.raises(RuntimeError, match="outside"):
            sql_uow(engine).commit()


class TestReadOnlyGuard:
    def test_a_write_not_declared_as_one_is_refused_by_postgresql(self, engine: Engine) -> None:
        user_id, _ = create_user(engine)
        with pytest.raises(psycopg.Error) as refused, sql_uow(engine) as uow:
            uow.users._db.run(SNEAKY_WRITE, {"id": user_id})
        assert refused.value.sqlstate == "25006"  # read_only_sql_transaction


class TestConnections:
    def test_one_scope_reuses_one_connection(self, engine: Engine) -> None:
        scope = ConnectionScope(engine)
        pids = set()
        for _ in range(3):
            with SqlUnitOfWork(scope):
                pids.add(backend_pid(scope))
        scope.release()
        assert len(pids) == 1

    def test_a_statement_the_server_refused_leaves_a_healthy_connection_in_the_pool(
        self, engine: Engine, admin_engine: Engine
    ) -> None:
        scope = ConnectionScope(engine)
        with pytest.raises(psycopg.errors.DivisionByZero), SqlUnitOfWork(scope) as uow:
            before = backend_pid(scope)
            uow.users._db.run(FAILING_WRITE, {})
        assert scope._conn is None  # given up by the request...
        assert backend_state(admin_engine, before) == "idle"  # ...not closed: idle in the pool

    def test_a_broken_connection_is_dropped(self, engine: Engine, admin_engine: Engine) -> None:
        scope = ConnectionScope(engine)
        with pytest.raises(TransientStorageError), SqlUnitOfWork(scope) as uow:
            before = backend_pid(scope)
            with admin_engine.connect() as admin:
                admin.exec_driver_sql(f"SELECT pg_terminate_backend({before})")
            assert eventually(lambda: backend_state(admin_engine, before) is None)
            uow.users._db.run(FAILING_WRITE, {})
        after = backend_pid(scope)
        scope.release()
        assert before != after
