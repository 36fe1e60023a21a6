"""In-memory doubles of the storage and hashing ports, for unit tests of the services."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from uuid import UUID

from shop.domain.idempotency import Replay, RequestKey
from shop.domain.logins import LoginAttempt, LoginPolicy, Throttle, lockout_seconds
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


class FakeStore:
    """The data all fake repositories share, like one database."""

    def __init__(self) -> None:
        self.users: dict[int, FakeUser] = {}
        self.attempts: set[UUID] = set()
        self.keys: dict[tuple[int, str], Replay] = {}
        # (scope, username, address) -> (failures, time of the last one)
        self.login_failures: dict[tuple[str, str, str], tuple[int, float]] = {}
        self.known_addresses: set[tuple[int, str]] = set()
        self.now = time.time

    def by_name(self, username: str) -> FakeUser | None:
        return next((u for u in self.users.values() if u.username == username), None)


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
        return WalletDocument(json.dumps(document))


class FakePurchaseRepository:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def buy(self, user_id: int, item: str, price: int, attempt: UUID) -> PurchaseOutcome:
        if attempt in self.store.attempts:
            return PurchaseOutcome(user_exists=True, bought=True)
        user = self.store.users.get(user_id)
        if user is None or user.balance < price:
            return PurchaseOutcome(user_exists=user is not None, bought=False)
        user.balance -= price
        user.inventory[item] = user.inventory.get(item, 0) + 1
        self.store.attempts.add(attempt)
        return PurchaseOutcome(user_exists=True, bought=True)


class FakeTransferRepository:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def transfer(
        self, sender_id: int, recipient: str, amount: int, attempt: UUID
    ) -> TransferOutcome:
        if attempt in self.store.attempts:
            return TransferOutcome(True, None, moved=True)
        sender = self.store.users.get(sender_id)
        target = self.store.by_name(recipient)
        target_id = None if target is None else target.id
        if sender is None or target is None or target is sender or sender.balance < amount:
            return TransferOutcome(sender is not None, target_id, moved=False)
        sender.balance -= amount
        target.balance += amount
        sender.sent[target.id] = sender.sent.get(target.id, 0) + amount
        target.received[sender.id] = target.received.get(sender.id, 0) + amount
        self.store.attempts.add(attempt)
        return TransferOutcome(True, target.id, moved=True)


class FakeIdempotencyRepository:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def claim(self, key: RequestKey) -> Replay | None:
        return self.store.keys.get((key.user_id, key.key))

    def record(self, key: RequestKey, outcome: str) -> None:
        self.store.keys[(key.user_id, key.key)] = Replay(key.fingerprint, outcome)


class FakeLoginRepository:
    """The throttle of domain/logins.py over dictionaries (no expiry of known addresses)."""

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
        self.store.known_addresses.add((user_id, attempt.address))

    def _known(self, attempt: LoginAttempt) -> bool:
        user = self.store.by_name(attempt.username)
        return user is not None and (user.id, attempt.address) in self.store.known_addresses


class FakeUnitOfWork:
    """Counts commits; can be told to fail the next N units of work transiently."""

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

    def __enter__(self) -> Self:
        if self.failures_to_inject:
            self.failures_to_inject -= 1
            raise TransientStorageError("deadlock")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def commit(self) -> None:
        self.commits += 1

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
