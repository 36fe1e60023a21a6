"""A write retried after its commit was lost applies once: attempt ids make retries safe.

A connection that drops while COMMIT is on its way leaves the outcome unknown to us; the
service retries with the same attempt id, and the statement finds the attempt in the
ledger and reports "already done" instead of applying it again.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import Engine

from shop.db.unit_of_work import ConnectionScope, SqlUnitOfWork, UnitPolicy
from shop.services.purchases import buy_item
from shop.services.transfers import send_coins
from shop.services.unit_of_work import TransientStorageError
from tests.factories import assert_money_invariants, balances, create_user


class CommitThenLoseConnection(SqlUnitOfWork):
    """The first unit of work commits, then reports a lost connection, as a dropped
    socket after the server's commit would."""

    lost = False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        super().__exit__(exc_type, exc, tb)
        if exc is None and not self.lost:
            self.lost = True
            raise TransientStorageError("connection_lost")


def flaky_uow(engine: Engine, retries: list[str]) -> CommitThenLoseConnection:
    return CommitThenLoseConnection(
        ConnectionScope(engine), UnitPolicy(on_retry=retries.append), release_after_each=True
    )


class TestServicesAfterALostCommit:
    def test_buy_retries_and_charges_once(self, engine: Engine) -> None:
        user, _ = create_user(engine)
        retries: list[str] = []
        buy_item(flaky_uow(engine, retries), user, "book")
        assert retries == ["connection_lost"]
        assert balances(engine, [user]) == {user: 950}
        assert_money_invariants(engine, [user])

    def test_send_retries_and_moves_coins_once(self, engine: Engine) -> None:
        alice, _ = create_user(engine)
        bob, bob_name = create_user(engine)
        retries: list[str] = []
        send_coins(flaky_uow(engine, retries), alice, bob_name, 100)
        assert retries == ["connection_lost"]
        assert balances(engine, [alice, bob]) == {alice: 900, bob: 1100}
        assert_money_invariants(engine, [alice, bob])
