"""One contract, two implementations: the in-memory fakes and the SQL repositories.

The fakes re-implement rules that live in SQL (who may send what, attempt ids, the
wallet document, idempotency keys, login lockouts). Every test here runs against both;
where they disagree, the SQL is the product and the fake is wrong.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from sqlalchemy.engine import Engine

from shop.db.unit_of_work import UnitPolicy
from shop.domain.idempotency import KEY_LIFETIME_SECONDS, Replay, RequestKey
from shop.domain.logins import KNOWN_ADDRESS_DAYS, LoginAttempt, LoginPolicy, Throttle
from shop.domain.wallets import Credentials, PurchaseOutcome, TransferOutcome
from shop.services.unit_of_work import UnitOfWork
from tests.factories import random_address, random_username, sql_uow
from tests.fakes import FakeStore, FakeUnitOfWork

# Small allowances so every scope trips within a few failures; lockouts of 1, 2, 4, 8 s.
POLICY = LoginPolicy(pair_free=2, account_free=4, address_free=6, max_lockout=8)
DAY = 24 * 3600
EMPTY_WALLET = '{"coins":1000,"inventory":[],"coinHistory":{"received":[],"sent":[]}}'


class Storage(Protocol):
    """What a contract test needs from either implementation."""

    def unit(self) -> UnitOfWork:
        """Return a fresh unit of work on this storage's data."""
        ...

    def let_time_pass(
        self, seconds: float, names: Iterable[str] = (), addresses: Iterable[str] = ()
    ) -> None:
        """Move the recorded times of these names' and addresses' rows (failures, known
        addresses, idempotency keys) back by ``seconds``, as if that much time had passed."""
        ...


@dataclass
class FakeStorage:
    store: FakeStore

    def unit(self) -> UnitOfWork:
        return FakeUnitOfWork(self.store, login_policy=POLICY)

    def let_time_pass(
        self, seconds: float, names: Iterable[str] = (), addresses: Iterable[str] = ()
    ) -> None:
        self.store.let_time_pass(seconds)  # the store is this test's alone


@dataclass
class SqlStorage:
    engine: Engine
    admin: Engine

    def unit(self) -> UnitOfWork:
        return sql_uow(self.engine, policy=UnitPolicy(login_policy=POLICY))

    def let_time_pass(
        self, seconds: float, names: Iterable[str] = (), addresses: Iterable[str] = ()
    ) -> None:
        params = {"s": seconds, "names": list(names), "addresses": list(addresses)}
        users = "SELECT id FROM users WHERE username = ANY(%(names)s)"
        back = "- %(s)s * interval '1 second'"
        with self.admin.begin() as conn:
            conn.exec_driver_sql(
                f"UPDATE login_failures SET last_failure = last_failure {back}"
                " WHERE username = ANY(%(names)s) OR address = ANY(%(addresses)s)",
                params,
            )
            conn.exec_driver_sql(
                f"UPDATE login_known_addresses SET last_success = last_success {back}"
                f" WHERE user_id IN ({users}) OR address = ANY(%(addresses)s)",
                params,
            )
            conn.exec_driver_sql(
                f"UPDATE idempotency_keys SET created_at = created_at {back}"
                f" WHERE user_id IN ({users})",
                params,
            )


@pytest.fixture(params=["fake", "sql"])
def storage(request: pytest.FixtureRequest) -> Storage:
    if request.param == "fake":
        return FakeStorage(FakeStore())
    engine: Engine = request.getfixturevalue("engine")
    admin: Engine = request.getfixturevalue("admin_engine")
    return SqlStorage(engine, admin)


def committed(storage: Storage, work: Callable[[UnitOfWork], Any]) -> Any:
    """Run ``work`` in one unit of work, commit it, and return what it returned."""
    with storage.unit() as uow:
        result = work(uow)
        uow.commit()
    return result


def read(storage: Storage, work: Callable[[UnitOfWork], Any]) -> Any:
    """Run ``work`` in a unit of work that is not committed."""
    with storage.unit() as uow:
        return work(uow)


def new_user(storage: Storage, name: str | None = None, balance: int = 1000) -> tuple[int, str]:
    username = name or random_username()
    user_id = committed(storage, lambda uow: uow.users.create(username, "hash", balance))
    assert isinstance(user_id, int)
    return user_id, username


def wallet(storage: Storage, user_id: int) -> dict[str, Any]:
    document = read(storage, lambda uow: uow.users.wallet(user_id))
    parsed: dict[str, Any] = json.loads(document.json)
    return parsed


def coins(storage: Storage, user_id: int) -> int:
    balance: int = wallet(storage, user_id)["coins"]
    return balance


def transfer(
    storage: Storage, sender: int, recipient: str, amount: int, attempt: uuid.UUID | None = None
) -> TransferOutcome:
    attempt = attempt or uuid.uuid4()
    outcome: TransferOutcome = committed(
        storage, lambda uow: uow.transfers.transfer(sender, recipient, amount, attempt)
    )
    return outcome


def buy(
    storage: Storage, user_id: int, item: str, price: int, attempt: uuid.UUID | None = None
) -> PurchaseOutcome:
    attempt = attempt or uuid.uuid4()
    outcome: PurchaseOutcome = committed(
        storage, lambda uow: uow.purchases.buy(user_id, item, price, attempt)
    )
    return outcome


class TestUnitsOfWork:
    def test_uncommitted_work_is_rolled_back(self, storage: Storage) -> None:
        name = random_username()
        read(storage, lambda uow: uow.users.create(name, "hash", 1000))
        assert read(storage, lambda uow: uow.users.credentials(name)) is None

    def test_work_is_rolled_back_on_error(self, storage: Storage) -> None:
        alice, _ = new_user(storage)
        _, bob = new_user(storage)
        with pytest.raises(ZeroDivisionError), storage.unit() as uow:
            uow.transfers.transfer(alice, bob, 10, uuid.uuid4())
            _ = 1 / 0
        assert coins(storage, alice) == 1000


class TestUsers:
    def test_a_new_name_gets_an_id_and_a_taken_one_none(self, storage: Storage) -> None:
        name = random_username()
        user_id, _ = new_user(storage, name)
        assert committed(storage, lambda uow: uow.users.create(name, "other", 1000)) is None
        stored = read(storage, lambda uow: uow.users.credentials(name))
        assert stored == Credentials(user_id, "hash")

    def test_an_unknown_name_has_no_credentials(self, storage: Storage) -> None:
        assert read(storage, lambda uow: uow.users.credentials(random_username())) is None

    def test_a_replaced_hash_is_what_credentials_return(self, storage: Storage) -> None:
        user_id, name = new_user(storage)
        committed(storage, lambda uow: uow.users.replace_password_hash(user_id, "newer"))
        assert read(storage, lambda uow: uow.users.credentials(name)) == Credentials(
            user_id, "newer"
        )


class TestWalletDocument:
    def test_an_unknown_user_has_no_wallet(self, storage: Storage) -> None:
        assert read(storage, lambda uow: uow.users.wallet(-1)) is None

    def test_a_new_user_has_the_exact_text_with_empty_lists(self, storage: Storage) -> None:
        user_id, _ = new_user(storage)
        assert read(storage, lambda uow: uow.users.wallet(user_id)).json == EMPTY_WALLET

    def test_history_is_grouped_per_counterparty_in_code_point_order(
        self, storage: Storage
    ) -> None:
        """The same order under any server locale (COLLATE "C"); the test database's own
        C.UTF-8 collation sorts by code point too, so this cannot tell the two apart."""
        alice, alice_name = new_user(storage)
        names = [new_user(storage, random_username(p))[1] for p in ("Z", "a", "Ä", "🙂", "张")]
        for amount, name in enumerate(names, start=1):
            transfer(storage, alice, name, amount)
            transfer(storage, alice, name, 10)
        carol = read(storage, lambda uow: uow.users.credentials(names[0])).user_id
        transfer(storage, carol, alice_name, 4)
        document = wallet(storage, alice)
        assert document["coinHistory"] == {
            "received": [{"fromUser": names[0], "amount": 4}],
            "sent": [
                {"toUser": name, "amount": amount + 10}
                for name, amount in sorted(zip(names, range(1, 6), strict=True))
            ],
        }

    def test_inventory_counts_each_item_in_name_order(self, storage: Storage) -> None:
        user_id, _ = new_user(storage)
        for item in ("t-shirt", "cup", "pink-hoody", "cup"):
            buy(storage, user_id, item, 1)
        assert wallet(storage, user_id)["inventory"] == [
            {"type": "cup", "quantity": 2},
            {"type": "pink-hoody", "quantity": 1},
            {"type": "t-shirt", "quantity": 1},
        ]

    def test_the_text_is_compact_and_keeps_non_ascii_names(self, storage: Storage) -> None:
        alice, _ = new_user(storage)
        _, bob = new_user(storage, random_username('Ärger "quoted" \\'))
        transfer(storage, alice, bob, 5)
        text = read(storage, lambda uow: uow.users.wallet(alice)).json
        sent = json.dumps([{"toUser": bob, "amount": 5}], ensure_ascii=False, separators=(",", ":"))
        assert text == EMPTY_WALLET.replace("1000", "995").replace('"sent":[]', f'"sent":{sent}')
        assert "Ärger" in text


class TestTransfers:
    def test_a_transfer_moves_coins_and_says_so(self, storage: Storage) -> None:
        alice, _ = new_user(storage)
        bob, bob_name = new_user(storage)
        assert transfer(storage, alice, bob_name, 1000) == TransferOutcome(True, bob, True)
        assert (coins(storage, alice), coins(storage, bob)) == (0, 2000)

    @pytest.mark.parametrize(
        ("recipient", "amount", "expected"),
        [
            ("nobody", 1, (True, None, False)),
            ("self", 1, (True, "alice", False)),
            ("bob", 1001, (True, "bob", False)),
        ],
    )
    def test_a_refused_transfer_moves_nothing_and_says_why(
        self, storage: Storage, recipient: str, amount: int, expected: tuple[bool, str, bool]
    ) -> None:
        alice, alice_name = new_user(storage)
        bob, bob_name = new_user(storage)
        ids = {"alice": alice, "bob": bob, None: None}
        name = {"self": alice_name, "bob": bob_name}.get(recipient, random_username("nobody"))
        sender_exists, recipient_id, moved = expected
        outcome = transfer(storage, alice, name, amount)
        assert outcome == TransferOutcome(sender_exists, ids[recipient_id], moved)
        assert (coins(storage, alice), coins(storage, bob)) == (1000, 1000)

    def test_an_unknown_sender_moves_nothing(self, storage: Storage) -> None:
        bob, bob_name = new_user(storage)
        assert transfer(storage, -1, bob_name, 1) == TransferOutcome(False, bob, False)
        assert coins(storage, bob) == 1000

    def test_a_repeated_attempt_reports_success_and_moves_coins_once(
        self, storage: Storage
    ) -> None:
        alice, _ = new_user(storage)
        bob, bob_name = new_user(storage)
        attempt = uuid.uuid4()
        first = transfer(storage, alice, bob_name, 600, attempt)
        again = transfer(storage, alice, bob_name, 600, attempt)  # more than is left
        assert first == again == TransferOutcome(True, bob, True)
        assert (coins(storage, alice), coins(storage, bob)) == (400, 1600)

    def test_a_purchase_attempt_id_is_not_a_transfer_attempt(self, storage: Storage) -> None:
        alice, _ = new_user(storage)
        bob, bob_name = new_user(storage)
        attempt = uuid.uuid4()
        buy(storage, alice, "pen", 10, attempt)
        assert transfer(storage, alice, bob_name, 5, attempt) == TransferOutcome(True, bob, True)
        assert (coins(storage, alice), coins(storage, bob)) == (985, 1005)


class TestPurchases:
    def test_a_purchase_debits_the_price_down_to_zero(self, storage: Storage) -> None:
        user_id, _ = new_user(storage)
        assert buy(storage, user_id, "hoody", 1000) == PurchaseOutcome(True, True)
        assert coins(storage, user_id) == 0

    def test_a_purchase_beyond_the_balance_changes_nothing(self, storage: Storage) -> None:
        user_id, _ = new_user(storage)
        assert buy(storage, user_id, "hoody", 1001) == PurchaseOutcome(True, False)
        assert wallet(storage, user_id)["coins"] == 1000
        assert wallet(storage, user_id)["inventory"] == []

    def test_an_unknown_user_buys_nothing(self, storage: Storage) -> None:
        assert buy(storage, -1, "pen", 10) == PurchaseOutcome(False, False)

    @pytest.mark.parametrize("exists", [True, False])
    def test_a_repeated_attempt_reports_success_and_charges_once(
        self, storage: Storage, exists: bool
    ) -> None:
        user_id, _ = new_user(storage)
        attempt = uuid.uuid4()
        buy(storage, user_id, "cup", 600, attempt)
        buyer = user_id if exists else -1
        assert buy(storage, buyer, "cup", 600, attempt) == PurchaseOutcome(exists, True)
        assert coins(storage, user_id) == 400


def key_of(user_id: int, key: str, request: str = "buy pen") -> RequestKey:
    return RequestKey(user_id, key, fingerprint=request)


def claim_and_record(storage: Storage, key: RequestKey, outcome: str) -> Replay | None:
    def work(uow: UnitOfWork) -> Replay | None:
        replay = uow.idempotency.claim(key)
        if replay is None:
            uow.idempotency.record(key, outcome)
        return replay

    replay: Replay | None = committed(storage, work)
    return replay


class TestIdempotencyKeys:
    def test_a_new_key_is_claimed_then_replays_what_was_recorded(self, storage: Storage) -> None:
        user_id, _ = new_user(storage)
        key = key_of(user_id, str(uuid.uuid4()))
        assert claim_and_record(storage, key, "ok") is None
        assert claim_and_record(storage, key, "other") == Replay("buy pen", "ok")

    def test_a_replay_carries_the_first_requests_fingerprint(self, storage: Storage) -> None:
        user_id, _ = new_user(storage)
        name = str(uuid.uuid4())
        claim_and_record(storage, key_of(user_id, name, "buy pen"), "insufficient_funds")
        replay = claim_and_record(storage, key_of(user_id, name, "buy cup"), "ok")
        assert replay == Replay("buy pen", "insufficient_funds")

    def test_a_claim_rolled_back_leaves_the_key_free(self, storage: Storage) -> None:
        user_id, _ = new_user(storage)
        key = key_of(user_id, str(uuid.uuid4()))
        with storage.unit() as uow:
            assert uow.idempotency.claim(key) is None
            uow.idempotency.record(key, "ok")  # never committed
        assert claim_and_record(storage, key, "ok") is None

    def test_a_key_belongs_to_one_user(self, storage: Storage) -> None:
        (alice, _), (bob, _) = new_user(storage), new_user(storage)
        name = str(uuid.uuid4())
        claim_and_record(storage, key_of(alice, name), "ok")
        assert claim_and_record(storage, key_of(bob, name), "ok") is None

    @pytest.mark.parametrize(
        ("age", "replayed"), [(KEY_LIFETIME_SECONDS - 60, True), (KEY_LIFETIME_SECONDS + 60, False)]
    )
    def test_a_key_is_remembered_for_its_lifetime(
        self, storage: Storage, age: int, replayed: bool
    ) -> None:
        user_id, name = new_user(storage)
        key = key_of(user_id, str(uuid.uuid4()))
        claim_and_record(storage, key, "ok")
        storage.let_time_pass(age, names=[name])
        assert (claim_and_record(storage, key, "ok") is not None) is replayed


@dataclass
class Caller:
    """Someone logging in to one account from one address."""

    storage: Storage
    name: str
    address: str

    @property
    def attempt(self) -> LoginAttempt:
        return LoginAttempt(self.name, self.address)

    def lockout(self) -> tuple[str | None, int]:
        """Return the scope and whole seconds of the lockout in force (None, 0: none).

        Rounded: a check runs a few milliseconds after the failure that set the lockout.
        """
        throttle: Throttle = read(self.storage, lambda uow: uow.logins.throttle(self.attempt))
        return throttle.scope, round(throttle.retry_after)

    def fail(self, times: int = 1) -> None:
        for _ in range(times):
            committed(self.storage, lambda uow: uow.logins.failed(self.attempt))

    def succeed(self, user_id: int) -> None:
        committed(self.storage, lambda uow: uow.logins.succeeded(self.attempt, user_id))

    def elsewhere(self) -> Caller:
        """The same account from a new address."""
        return Caller(self.storage, self.name, random_address())

    def neighbour(self) -> Caller:
        """Another account from the same address."""
        return Caller(self.storage, random_username(), self.address)

    def let_time_pass(self, seconds: float) -> None:
        self.storage.let_time_pass(seconds, names=[self.name], addresses=[self.address])


NONE = (None, 0)


@pytest.fixture
def caller(storage: Storage) -> Caller:
    return Caller(storage, random_username(), random_address())


class TestLoginThrottle:
    def test_no_failures_no_lockout(self, caller: Caller) -> None:
        assert caller.lockout() == NONE

    def test_the_pair_locks_after_its_free_failures_and_doubles(self, caller: Caller) -> None:
        caller.fail(POLICY.pair_free - 1)
        assert caller.lockout() == NONE
        caller.fail()
        assert caller.lockout() == ("pair", 1)
        caller.fail()
        assert caller.lockout() == ("pair", 2)

    def test_a_lockout_is_capped(self, caller: Caller) -> None:
        caller.fail(POLICY.pair_free + 10)
        assert caller.lockout()[1] == POLICY.max_lockout  # every scope is at the cap

    def test_a_lockout_ends_after_its_time(self, caller: Caller) -> None:
        caller.fail(POLICY.pair_free + 1)  # the pair: 2 s
        caller.let_time_pass(2.5)
        assert caller.lockout() == NONE

    def test_failures_idle_for_a_whole_window_count_from_one_again(self, caller: Caller) -> None:
        caller.fail(POLICY.pair_free)
        caller.let_time_pass(POLICY.window + 1)
        assert caller.lockout() == NONE
        caller.fail()
        assert caller.lockout() == NONE

    def test_the_right_password_clears_the_pair_but_not_the_address(
        self, storage: Storage, caller: Caller
    ) -> None:
        user_id, _ = new_user(storage, caller.name)
        caller.fail(POLICY.pair_free + 2)
        caller.succeed(user_id)
        assert caller.lockout() == NONE
        assert caller.neighbour().lockout() == NONE  # 4 failures: the address allows 6
        caller.fail(POLICY.address_free - POLICY.pair_free - 2)
        assert caller.neighbour().lockout() == ("address", 1)

    def test_the_account_scope_spares_known_addresses(
        self, storage: Storage, caller: Caller
    ) -> None:
        user_id, _ = new_user(storage, caller.name)
        caller.succeed(user_id)  # the address becomes known to the account
        for _ in range(POLICY.account_free):
            caller.elsewhere().fail()
        assert caller.elsewhere().lockout() == ("account", 1)
        assert caller.lockout() == NONE

    def test_a_known_address_is_forgotten_after_its_days(
        self, storage: Storage, caller: Caller
    ) -> None:
        user_id, _ = new_user(storage, caller.name)
        caller.succeed(user_id)
        caller.let_time_pass((KNOWN_ADDRESS_DAYS + 1) * DAY)
        for _ in range(POLICY.account_free):
            caller.elsewhere().fail()
        assert caller.lockout() == ("account", 1)

    def test_an_address_guessing_many_accounts_is_locked(self, caller: Caller) -> None:
        for _ in range(POLICY.address_free):
            caller.neighbour().fail()
        assert caller.lockout() == ("address", 1)

    def test_the_longest_lockout_in_force_wins(self, caller: Caller) -> None:
        caller.fail(POLICY.pair_free + 2)  # the pair: 4 s, the account: 1 s
        for _ in range(POLICY.address_free - POLICY.pair_free - 1):
            caller.neighbour().fail()  # the address: 2 s
        assert caller.lockout() == ("pair", 4)
