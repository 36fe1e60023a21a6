"""In-memory doubles of the storage and hashing ports, for unit tests of the services.

The repositories re-implement rules that live in SQL (shop/db/); the contract tests in
tests/integration/test_storage_contract.py run the same cases against both, so a fake
that drifts from the product fails there.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from uuid import UUID

from shop.domain.idempotency import KEY_LIFETIME_SECONDS, Replay, RequestKey
from shop.domain.logins import (
    KNOWN_ADDRESS_DAYS,
    LoginAttempt,
    LoginPolicy,
    Throttle,
    lockout_seconds,
)
from shop.domain.wallets import Credentials, PurchaseOutcome, TransferOutcome, WalletDocument
from shop.services.unit_of_work import TransientStorageError


@dataclass
class FakeUser:
    id: int
    username: str
    password_hash: str
    balance: int
    inventory: dict[str, int] = field(default_factory=dict)
    sent: dict[int, int] = field(default_factory=dict)
    received: dict[int, int] = field(default_factory=dict)


@dataclass
class FakeKey:
    fingerprint: str
    outcome: str | None
    created_at: float


# The tables of FakeStore: what a unit of work rolls back unless it commits.
TABLES = (
    "users",
    "purchase_attempts",
    "transfer_attempts",
    "keys",
    "login_failures",
    "known_addresses",
)


class FakeStore:
    """The data all fake repositories share, like one database."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.users: dict[int, FakeUser] = {}
        self.purchase_attempts: set[UUID] = set()
        self.transfer_attempts: set[UUID] = set()
        self.keys: dict[tuple[int, str], FakeKey] = {}
        # (scope, username, address) -> (failures, time of the last one)
        self.login_failures: dict[tuple[str, str, str], tuple[int, float]] = {}
        # (user id, address) -> time of the last successful login from there
        self.known_addresses: dict[tuple[int, str], float] = {}
        self.now = now

    def by_name(self, username: str) -> FakeUser | None:
        return next((u for u in self.users.values() if u.username == username), None)

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy({table: getattr(self, table) for table in TABLES})

    def restore(self, snapshot: dict[str, Any]) -> None:
        for table, rows in snapshot.items():
            setattr(self, table, rows)

    def let_time_pass(self, seconds: float) -> None:
        """Move every recorded time back by ``seconds``, as if that much time had passed."""
        for key in self.keys.values():
            key.created_at -= seconds
        self.login_failures = {
            scope: (failures, last - seconds)
            for scope, (failures, last) in self.login_failures.items()
        }
        self.known_addresses = {pair: at - seconds for pair, at in self.known_addresses.items()}


class FakeUserRepository:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def credentials(self, username: str) -> Credentials | None:
        user = self.store.by_name(username)
        return None if user is None else Credentials(user.id, user.password_hash)

    def create(self, username: str, password_hash: str, balance: int) -> int | None:
        if self.store.by_name(username) is not None:
            return None
        user_id = len(self.store.users) + 1
        self.store.users[user_id] = FakeUser(user_id, username, password_hash, balance)
        return user_id

    def replace_password_hash(self, user_id: int, password_hash: str) -> None:
        self.store.users[user_id].password_hash = password_hash

    def wallet(self, user_id: int) -> WalletDocument | None:
        user = self.store.users.get(user_id)
        if user is None:
            return None
        name = {u.id: u.username for u in self.store.users.values()}

        def totals(key: str, amounts: dict[int, int]) -> list[dict[str, object]]:
            pairs = sorted((name[k], v) for k, v in amounts.items())
            return [{key: username, "amount": amount} for username, amount in pairs]

        document = {
            "coins": user.balance,
            "inventory": [{"type": i, "quantity": q} for i, q in sorted(user.inventory.items())],
            "coinHistory": {
                "received": totals("fromUser", user.received),
                "sent": totals("toUser", user.sent),
            },
        }
        # The same text PostgreSQL writes: compact, non-ASCII as is.
        return WalletDocument(json.dumps(document, ensure_ascii=False, separators=(",", ":")))


class FakePurchaseRepository:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def buy(self, user_id: int, item: str, price: int, attempt: UUID) -> PurchaseOutcome:
        user = self.store.users.get(user_id)
        if attempt in self.store.purchase_attempts:
            return PurchaseOutcome(user_exists=user is not None, bought=True)
        if user is None or user.balance < price:
            return PurchaseOutcome(user_exists=user is not None, bought=False)
        user.balance -= price
        user.inventory[item] = user.inventory.get(item, 0) + 1
        self.store.purchase_attempts.add(attempt)
        return PurchaseOutcome(user_exists=True, bought=True)


class FakeTransferRepository:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def transfer(
        self, sender_id: int, recipient: str, amount: int, attempt: UUID
    ) -> TransferOutcome:
        sender = self.store.users.get(sender_id)
        target = self.store.by_name(recipient)
        target_id = None if target is None else target.id
        if attempt in self.store.transfer_attempts:
            return TransferOutcome(sender is not None, target_id, moved=True)
        if sender is None or target is None or target is sender or sender.balance < amount:
            return TransferOutcome(sender is not None, target_id, moved=False)
        sender.balance -= amount
        target.balance += amount
        sender.sent[target.id] = sender.sent.get(target.id, 0) + amount
        target.received[sender.id] = target.received.get(sender.id, 0) + amount
        self.store.transfer_attempts.add(attempt)
        return TransferOutcome(True, target.id, moved=True)


class FakeIdempotencyRepository:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def claim(self, key: RequestKey) -> Replay | None:
        now, slot = self.store.now(), (key.user_id, key.key)
        stored = self.store.keys.get(slot)
        if stored is not None and stored.created_at >= now - KEY_LIFETIME_SECONDS:
            assert stored.outcome is not None, "a key is claimed and recorded in one unit"
            return Replay(stored.fingerprint, stored.outcome)
        self.store.keys[slot] = FakeKey(key.fingerprint, None, now)  # new, or taken over
        return None

    def record(self, key: RequestKey, outcome: str) -> None:
        stored = self.store.keys.get((key.user_id, key.key))
        if stored is not None:
            stored.outcome = outcome


class FakeLoginRepository:
    """The throttle of domain/logins.py over dictionaries."""

    def __init__(self, store: FakeStore, policy: LoginPolicy) -> None:
        self.store = store
        self.policy = policy

    def _scopes(self, attempt: LoginAttempt) -> list[tuple[tuple[str, str, str], int]]:
        user, address, policy = attempt.username, attempt.address, self.policy
        return [
            (("pair", user, address), policy.pair_free),
            (("account", user, ""), policy.account_free),
            (("address", "", address), policy.address_free),
        ]

    def throttle(self, attempt: LoginAttempt) -> Throttle:
        now, known = self.store.now(), self._known(attempt)
        longest = Throttle()
        for scope, free in self._scopes(attempt):
            failures, last = self.store.login_failures.get(scope, (0, 0.0))
            if scope[0] == "account" and known or last < now - self.policy.window:
                continue
            wait = last + lockout_seconds(failures, free, self.policy.max_lockout) - now
            if failures >= free and wait > longest.retry_after:
                longest = Throttle(scope[0], wait)
        return longest

    def failed(self, attempt: LoginAttempt) -> None:
        now = self.store.now()
        for scope, _ in self._scopes(attempt):
            failures, last = self.store.login_failures.get(scope, (0, 0.0))
            fresh = last >= now - self.policy.window
            self.store.login_failures[scope] = ((failures if fresh else 0) + 1, now)

    def succeeded(self, attempt: LoginAttempt, user_id: int) -> None:
        self.store.login_failures.pop(("pair", attempt.username, attempt.address), None)
        self.store.known_addresses[(user_id, attempt.address)] = self.store.now()

    def _known(self, attempt: LoginAttempt) -> bool:
        user = self.store.by_name(attempt.username)
        if user is None:
            return False
        last_success = self.store.known_addresses.get((user.id, attempt.address))
        oldest = self.store.now() - KNOWN_ADDRESS_DAYS * 24 * 3600
        return last_success is not None and last_success > oldest


class FakeUnitOfWork:
    """Rolled back unless committed, like the real one; counts commits; can be told to fail
    the next N units of work transiently."""

    def __init__(
        self,
        store: FakeStore | None = None,
        retry_attempts: int = 3,
        login_policy: LoginPolicy | None = None,
    ) -> None:
        self.store = store or FakeStore()
        self.users = FakeUserRepository(self.store)
        self.purchases = FakePurchaseRepository(self.store)
        self.transfers = FakeTransferRepository(self.store)
        self.idempotency = FakeIdempotencyRepository(self.store)
        self.logins = FakeLoginRepository(self.store, login_policy or LoginPolicy())
        self.retry_attempts = retry_attempts
        self.budget: float | None = None
        self.held: list[tuple[str, ...]] = []
        self.commits = 0
        self.failures_to_inject = 0
        self.retries: list[str] = []
        self.detached = 0
        self._undo: dict[str, Any] | None = None

    def __enter__(self) -> Self:
        if self.failures_to_inject:
            self.failures_to_inject -= 1
            raise TransientStorageError("deadlock")
        self._undo = self.store.snapshot()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        undo, self._undo = self._undo, None
        if undo is not None:
            self.store.restore(undo)

    def commit(self) -> None:
        if self._undo is None:
            raise RuntimeError("commit() outside of 'with uow:'")
        self.commits += 1
        self._undo = self.store.snapshot()  # work after a commit is a transaction of its own

    def on_retry(self, reason: str) -> None:
        self.retries.append(reason)

    def detach(self) -> None:
        self.detached += 1

    def remaining(self) -> float | None:
        return self.budget

    @contextlib.contextmanager
    def exclusive(self, *keys: str) -> Iterator[None]:
        self.held.append(keys)
        yield


class FakeHasher:
    """Reversible "hashing" that is obviously fake, so unit tests stay instant."""

    def __init__(self, prefix: str = "fake$") -> None:
        self.prefix = prefix

    def hash(self, password: str) -> str:
        return self.prefix + password

    def verify(self, password_hash: str, password: str) -> bool:
        return password_hash.split("$", 1)[1] == password

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith(self.prefix)
