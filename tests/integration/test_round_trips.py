"""Each use case is one statement per unit of work: atomic on an autocommit connection.

The engine runs in autocommit mode to save the BEGIN/COMMIT round trips; that is only
safe while every unit of work is a single statement, which these tests pin down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from shop.db.engine import create_db_engine
from shop.services.auth import authenticate
from shop.services.info import get_info
from shop.services.purchases import buy_item
from shop.services.transfers import send_coins
from shop.settings import Settings
from tests.factories import CHEAP_HASHER, PASSWORD, create_user, random_username, sql_uow


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def run(engine: Engine, use_case: Callable[[], object]) -> list[str]:
    with statements(engine) as seen:
        use_case()
    return seen


def test_the_service_engine_runs_in_autocommit(settings: Settings) -> None:
    service_engine = create_db_engine(settings)
    try:
        with service_engine.connect() as conn:
            assert conn.connection.dbapi_connection.autocommit is True  # type: ignore[union-attr]
    finally:
        service_engine.dispose()


class TestOneStatementPerUnit:
    def test_buy_send_and_info_are_one_statement_each(self, settings: Settings) -> None:
        engine = create_db_engine(settings)
        try:
            alice, _ = create_user(engine)
            _, bob = create_user(engine)
            assert run(engine, lambda: buy_item(sql_uow(engine), alice, "pen")) == ["WITH"]
            assert run(engine, lambda: send_coins(sql_uow(engine), alice, bob, 5)) == ["WITH"]
            assert run(engine, lambda: get_info(sql_uow(engine), alice)) == ["SELECT"]
        finally:
            engine.dispose()

    def test_sign_up_is_a_read_then_one_insert_and_login_one_read(self, settings: Settings) -> None:
        engine = create_db_engine(settings)
        name = random_username()
        try:
            sign_up = run(
                engine, lambda: authenticate(sql_uow(engine), CHEAP_HASHER, name, PASSWORD)
            )
            login = run(engine, lambda: authenticate(sql_uow(engine), CHEAP_HASHER, name, PASSWORD))
        finally:
            engine.dispose()
        assert sign_up == ["SELECT", "INSERT"]
        assert login == ["SELECT"]
