"""Use cases on in-memory fakes: rules, outcomes and the retry policy."""

from __future__ import annotations

import pytest

from shop.domain.errors import (
    InsufficientFunds,
    InvalidCredentials,
    SelfTransfer,
    UnknownItem,
    UnknownRecipient,
    UnknownUser,
    ValidationError,
)
from shop.services.auth import authenticate
from shop.services.info import get_info
from shop.services.purchases import buy_item
from shop.services.transfers import send_coins
from shop.services.unit_of_work import TransientStorageError
from tests.factories import wallet
from tests.fakes import FakeHasher, FakeUnitOfWork


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


def new_user(uow: FakeUnitOfWork, name: str) -> int:
    """Sign ``name`` up through the service on fakes; return the new user's id."""
    return authenticate(uow, FakeHasher(), name, "pw").user_id


class TestAuthenticate:
    def test_first_login_creates_the_user_with_1000_coins(self, uow: FakeUnitOfWork) -> None:
        login = authenticate(uow, FakeHasher(), "alice", "pw")
        assert login.created
        assert wallet(uow, login.user_id)["coins"] == 1000
        assert uow.commits == 2  # creating the user, recording the successful login
        assert not authenticate(uow, FakeHasher(), "alice", "pw").created

    def test_the_connection_is_given_back_before_hashing(self, uow: FakeUnitOfWork) -> None:
        class CheckingHasher(FakeHasher):
            def hash(self, password: str) -> str:
                assert uow.detached == 1
                return super().hash(password)

        authenticate(uow, CheckingHasher(), "alice", "pw")
        assert uow.detached == 1

    def test_password_is_stored_hashed(self, uow: FakeUnitOfWork) -> None:
        user_id = new_user(uow, "alice")
        assert uow.store.users[user_id].password_hash == "fake$pw"

    def test_later_login_with_the_same_password_returns_the_same_user(
        self, uow: FakeUnitOfWork
    ) -> None:
        assert new_user(uow, "alice") == new_user(uow, "alice")
        assert len(uow.store.users) == 1

    def test_wrong_password_is_refused(self, uow: FakeUnitOfWork) -> None:
        new_user(uow, "alice")
        with pytest.raises(InvalidCredentials):
            authenticate(uow, FakeHasher(), "alice", "wrong")

    def test_outdated_hash_is_replaced_on_login(self, uow: FakeUnitOfWork) -> None:
        user_id = authenticate(uow, FakeHasher(prefix="old$"), "alice", "pw").user_id
        authenticate(uow, FakeHasher(prefix="new$"), "alice", "pw")
        assert uow.store.users[user_id].password_hash == "new$pw"

    def test_losing_the_sign_up_race_verifies_against_the_winner(self, uow: FakeUnitOfWork) -> None:
        class RacingHasher(FakeHasher):
            def hash(self, password: str) -> str:
                # Another request creates the user while this one hashes.
                uow.users.create("alice", "fake$pw", 1000)
                return super().hash(password)

        login = authenticate(uow, RacingHasher(), "alice", "pw")
        assert not login.created
        winner = uow.store.by_name("alice")
        assert winner is not None and login.user_id == winner.id
        with pytest.raises(InvalidCredentials):
            authenticate(uow, RacingHasher(), "alice", "other")

    @pytest.mark.parametrize(("name", "password"), [("", "pw"), ("alice", ""), (" a", "pw")])
    def test_invalid_input_touches_no_storage(
        self, uow: FakeUnitOfWork, name: str, password: str
    ) -> None:
        with pytest.raises(ValidationError):
            authenticate(uow, FakeHasher(), name, password)
        assert uow.store.users == {}


class TestBuyItem:
    def test_debits_the_price_and_adds_the_item(self, uow: FakeUnitOfWork) -> None:
        user_id = new_user(uow, "alice")
        buy_item(uow, user_id, "cup")
        buy_item(uow, user_id, "cup")
        document = wallet(uow, user_id)
        assert document["coins"] == 960
        assert document["inventory"] == [{"type": "cup", "quantity": 2}]

    def test_unknown_item_is_refused_before_storage(self, uow: FakeUnitOfWork) -> None:
        user_id = new_user(uow, "alice")
        commits = uow.commits
        with pytest.raises(UnknownItem):
            buy_item(uow, user_id, "car")
        assert uow.commits == commits

    def test_short_balance_is_refused_and_changes_nothing(self, uow: FakeUnitOfWork) -> None:
        user_id = new_user(uow, "alice")
        buy_item(uow, user_id, "pink-hoody")
        buy_item(uow, user_id, "pink-hoody")
        with pytest.raises(InsufficientFunds):
            buy_item(uow, user_id, "pen")
        assert wallet(uow, user_id)["coins"] == 0

    def test_vanished_user_is_reported(self, uow: FakeUnitOfWork) -> None:
        with pytest.raises(UnknownUser):
            buy_item(uow, 404, "pen")


class TestSendCoins:
    def test_moves_coins_and_records_both_sides(self, uow: FakeUnitOfWork) -> None:
        alice, bob = new_user(uow, "alice"), new_user(uow, "bob")
        send_coins(uow, alice, "bob", 30)
        send_coins(uow, alice, "bob", 12)
        assert wallet(uow, alice)["coins"] == 958
        assert wallet(uow, alice)["coinHistory"]["sent"] == [{"toUser": "bob", "amount": 42}]
        assert wallet(uow, bob)["coinHistory"]["received"] == [{"fromUser": "alice", "amount": 42}]

    @pytest.mark.parametrize(
        ("recipient", "amount", "error"),
        [
            ("nobody", 1, UnknownRecipient),
            ("alice", 1, SelfTransfer),
            ("bob", 1001, InsufficientFunds),
            ("bob", 0, ValidationError),
            ("", 1, ValidationError),
        ],
    )
    def test_refusals_change_nothing(
        self, uow: FakeUnitOfWork, recipient: str, amount: int, error: type[Exception]
    ) -> None:
        alice, bob = new_user(uow, "alice"), new_user(uow, "bob")
        with pytest.raises(error):
            send_coins(uow, alice, recipient, amount)
        assert wallet(uow, alice)["coins"] == wallet(uow, bob)["coins"] == 1000

    def test_vanished_sender_is_reported(self, uow: FakeUnitOfWork) -> None:
        new_user(uow, "bob")
        with pytest.raises(UnknownUser):
            send_coins(uow, 404, "bob", 1)


class TestInfo:
    def test_vanished_user_is_reported(self, uow: FakeUnitOfWork) -> None:
        with pytest.raises(UnknownUser):
            get_info(uow, 404)


class TestRetries:
    def test_transient_failures_are_retried_and_counted(self, uow: FakeUnitOfWork) -> None:
        user_id = new_user(uow, "alice")
        uow.failures_to_inject = 2
        buy_item(uow, user_id, "pen")
        assert uow.retries == ["deadlock", "deadlock"]
        assert wallet(uow, user_id)["coins"] == 990

    def test_retries_are_bounded(self, uow: FakeUnitOfWork) -> None:
        user_id = new_user(uow, "alice")
        uow.failures_to_inject = uow.retry_attempts
        with pytest.raises(TransientStorageError):
            buy_item(uow, user_id, "pen")
        assert len(uow.retries) == uow.retry_attempts - 1
        assert wallet(uow, user_id)["coins"] == 1000
