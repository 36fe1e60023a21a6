"""What each use case sends to PostgreSQL: reads alone, writes inside one real transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from shop.db.statements import Statements
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


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the first word of every statement the data layer sends (and still send it)."""
    seen: list[str] = []
    execute = Statements._execute

    def recording(self: Statements, text: str, params: Any = None) -> Any:
        seen.append(text.split()[0].upper())
        return execute(self, text, params)

    monkeypatch.setattr(Statements, "_execute", recording)
    return seen


def run(sent: list[str], use_case: Callable[[], object]) -> list[str]:
    sent.clear()
    use_case()
    return list(sent)


class TestStatementsPerUseCase:
    def test_buy_and_send_are_one_statement_in_a_transaction_and_info_one_read(
        self, engine: Engine, sent: list[str]
    ) -> None:
        alice, _ = create_user(engine)
        _, bob = create_user(engine)
        assert run(sent, lambda: buy_item(sql_uow(engine), alice, "pen")) == WRITE
        assert run(sent, lambda: send_coins(sql_uow(engine), alice, bob, 5)) == WRITE
        assert run(sent, lambda: get_info(sql_uow(engine), alice)) == ["SELECT"]

    def test_an_idempotent_write_claims_its_key_in_the_same_transaction(
        self, engine: Engine, sent: list[str]
    ) -> None:
        alice, _ = create_user(engine)
        first = run(sent, lambda: buy_item(sql_uow(engine), alice, "pen", "key-1"))
        again = run(sent, lambda: buy_item(sql_uow(engine), alice, "pen", "key-1"))
        assert first == ["BEGIN", "INSERT", "WITH", "UPDATE", "COMMIT"]
        assert again == ["BEGIN", "INSERT", "SELECT", "ROLLBACK"]

    def test_sign_up_and_login_check_the_throttle_read_then_record_the_success(
        self, engine: Engine, sent: list[str]
    ) -> None:
        name, address = random_username(), random_address()

        def login() -> object:
            return authenticate(sql_uow(engine), CHEAP_HASHER, name, PASSWORD, address)

        sign_up = run(sent, login)
        again = run(sent, login)
        assert sign_up == ["WITH", "SELECT", "BEGIN", "INSERT", "COMMIT", *WRITE]
        assert again == ["WITH", "SELECT", *WRITE]
