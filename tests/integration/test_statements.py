"""What each use case sends to PostgreSQL: reads alone, writes inside one real transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from shop.services.auth import authenticate
from shop.services.info import get_info
from shop.services.purchases import buy_item
from shop.services.transfers import send_coins
from tests.factories import (
    CHEAP_HASHER,
    PASSWORD,
    create_user,
    random_address,
    random_username,
    sql_uow,
)

WRITE = ["BEGIN", "WITH", "COMMIT"]


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


class TestStatementsPerUseCase:
    def test_buy_and_send_are_one_statement_in_a_transaction_and_info_one_read(
        self, engine: Engine
    ) -> None:
        alice, _ = create_user(engine)
        _, bob = create_user(engine)
        assert run(engine, lambda: buy_item(sql_uow(engine), alice, "pen")) == WRITE
        assert run(engine, lambda: send_coins(sql_uow(engine), alice, bob, 5)) == WRITE
        assert run(engine, lambda: get_info(sql_uow(engine), alice)) == ["SELECT"]

    def test_an_idempotent_write_claims_its_key_in_the_same_transaction(
        self, engine: Engine
    ) -> None:
        alice, _ = create_user(engine)
        first = run(engine, lambda: buy_item(sql_uow(engine), alice, "pen", "key-1"))
        again = run(engine, lambda: buy_item(sql_uow(engine), alice, "pen", "key-1"))
        assert first == ["BEGIN", "INSERT", "WITH", "UPDATE", "COMMIT"]
        assert again == ["BEGIN", "INSERT", "SELECT", "ROLLBACK"]

    def test_sign_up_and_login_check_the_throttle_read_then_record_the_success(
        self, engine: Engine
    ) -> None:
        name, address = random_username(), random_address()

        def login() -> object:
            return authenticate(sql_uow(engine), CHEAP_HASHER, name, PASSWORD, address)

        sign_up = run(engine, login)
        again = run(engine, login)
        assert sign_up == ["WITH", "SELECT", "BEGIN", "INSERT", "COMMIT", *WRITE]
        assert again == ["WITH", "SELECT", *WRITE]
