"""Log in, creating the account on the first call for a username."""

from __future__ import annotations

from dataclasses import dataclass

from shop.domain import rules
from shop.domain.errors import InvalidCredentials
from shop.domain.wallets import Credentials
from shop.services.passwords import PasswordHasher
from shop.services.unit_of_work import UnitOfWork, with_retries


@dataclass(frozen=True, slots=True)
class Login:
    """Who logged in, and whether this call created the account."""

    user_id: int
    created: bool


def authenticate(uow: UnitOfWork, hasher: PasswordHasher, username: str, password: str) -> Login:
    """Log in with these credentials, creating the user if the name is new.

    Hashing runs outside any transaction, and with the request's pooled connection given
    back: a login storm must not hold every connection while it waits for the CPU.
    Concurrent first logins race on the unique username: the loser re-reads
    the winner's row and verifies against it.
    """
    username = rules.normalize_username(username)
    rules.check_password(password)
    stored = with_retries(uow, lambda: _credentials(uow, username))
    uow.detach()
    if stored is None:
        created = _create(uow, username, hasher.hash(password))
        if created is not None:
            return Login(created, created=True)
        stored = with_retries(uow, lambda: _credentials(uow, username))
        if stored is None:  # the conflicting row vanished: users are never deleted today
            raise InvalidCredentials("invalid username or password")
    if not hasher.verify(stored.password_hash, password):
        raise InvalidCredentials("invalid username or password")
    if hasher.needs_rehash(stored.password_hash):
        _rehash(uow, stored.user_id, hasher.hash(password))
    return Login(stored.user_id, created=False)


def _credentials(uow: UnitOfWork, username: str) -> Credentials | None:
    with uow:
        return uow.users.credentials(username)


def _create(uow: UnitOfWork, username: str, password_hash: str) -> int | None:
    def work() -> int | None:
        with uow:
            user_id = uow.users.create(username, password_hash, rules.STARTING_BALANCE)
            uow.commit()
            return user_id

    return with_retries(uow, work)


def _rehash(uow: UnitOfWork, user_id: int, password_hash: str) -> None:
    def work() -> None:
        with uow:
            uow.users.replace_password_hash(user_id, password_hash)
            uow.commit()

    with_retries(uow, work)
