"""Transient database faults on a real PostgreSQL: retried, bounded, never half-applied."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine

from observability import metrics
from shop.db.errors import transient_reason
from shop.db.unit_of_work import ConnectionScope, SqlUnitOfWork, UnitPolicy
from shop.services.purchases import buy_item
from shop.services.unit_of_work import TransientStorageError
from tests.factories import assert_money_invariants, balances, create_user


def connection_errors() -> float:
    return REGISTRY.get_sample_value("shop_db_connection_errors_total") or 0.0


def kill_backend(admin_engine: Engine, pid: int) -> None:
    with admin_engine.connect() as admin:
        admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


class TestConnectionLoss:
    def test_a_killed_connection_is_replaced_and_the_purchase_happens_once(
        self, engine: Engine, admin_engine: Engine
    ) -> None:
        user_id, _ = create_user(engine)
        scope = ConnectionScope(engine)
        retries: list[str] = []
        uow = SqlUnitOfWork(scope, UnitPolicy(on_retry=retries.append))
        connection = scope.get().dbapi_connection
        assert connection is not None
        row = connection.cursor().execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        pid = row[0]
        kill_backend(admin_engine, pid)

        buy_item(uow, user_id, "cup")

        scope.release()
        assert retries and retries[0] in ("admin_shutdown", "connection_lost")
        assert balances(engine, [user_id]) == {user_id: 980}
        assert_money_invariants(engine, [user_id])

    def test_an_unreachable_database_fails_after_bounded_retries(self) -> None:
        dead = sa.create_engine(
            "postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
        )
        errors_before = connection_errors()
        retries: list[str] = []
        policy = UnitPolicy(
            retry_attempts=2,
            on_retry=retries.append,
            on_connection_error=metrics.DB_CONNECTION_ERRORS.inc,
        )
        uow = SqlUnitOfWork(ConnectionScope(dead), policy)
        with pytest.raises(TransientStorageError):
            buy_item(uow, 1, "pen")
        assert retries == ["connection_failure"]
        assert connection_errors() - errors_before == 2


class TestClassification:
    def test_a_real_deadlock_is_transient(self, engine: Engine, admin_engine: Engine) -> None:
        a, _ = create_user(engine)
        b, _ = create_user(engine)
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def lock(first: int, second: int) -> None:
            try:
                with admin_engine.connect() as conn, conn.begin():
                    update = sa.text("UPDATE users SET balance = balance WHERE id = :id")
                    conn.execute(update, {"id": first})
                    barrier.wait()
                    conn.execute(update, {"id": second})
            except sa.exc.DBAPIError as error:
                errors.append(error)

        threads = [threading.Thread(target=lock, args=p) for p in ((a, b), (b, a))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [transient_reason(e) for e in errors] == ["deadlock"]

    def test_a_programming_error_is_not_transient(self, engine: Engine) -> None:
        with pytest.raises(sa.exc.DBAPIError) as caught, engine.connect() as conn:
            conn.execute(sa.text("SELECT no_such_column FROM users"))
        assert transient_reason(caught.value) is None
        assert transient_reason(ValueError("x")) is None
