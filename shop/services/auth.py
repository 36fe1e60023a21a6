"""Log in, creating the account on the first call for a username."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shop.domain import rules
from shop.domain.errors import InvalidCredentials, LoginThrottled
from shop.domain.logins import LoginAttempt, Throttle
from shop.domain.wallets import Credentials
from shop.services.passwords import PasswordHasher
from shop.services.unit_of_work import UnitOfWork, with_retries

# The address of a caller the transport could not name (a unix socket, a test client).
UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True, slots=True)
class Login:
    """Who logged in, and whether this call created the account."""

    user_id: int
    created: bool


def authenticate(
    uow: UnitOfWork,
    hasher: PasswordHasher,
    username: str,
    password: str,
    address: str | None = None,
) -> Login:
    """Log in with these credentials, creating the user if the name is new.

    An attempt locked out by earlier failures (domain/logins.py) is refused before any
    hashing; a wrong password counts against its account, its address and the pair. A few
    attempts per account run at once per worker (the hot-row slots); the rest wait their
    turn, so a burst of guesses meets the failures recorded before it, not an empty count.
    Hashing runs outside any transaction, and with the request's pooled connection given
    back: a login storm must not hold every connection while it waits for the CPU.
    Concurrent first logins race on the unique username: the loser re-reads
    the winner's row and verifies against it.
    """
    username = rules.normalize_username(username)
    rules.check_password(password)
    attempt = LoginAttempt(username, address or UNKNOWN_ADDRESS)
    with uow.exclusive(f"login:{username}"):
        throttle = with_retries(uow, lambda: _throttle(uow, attempt))
        if throttle.scope is not None:
            raise LoginThrottled(throttle.scope, throttle.retry_after)
        try:
            login = _check(uow, hasher, attempt, password)
        except InvalidCredentials:
            _write(uow, lambda: uow.logins.failed(attempt))
            raise
        _write(uow, lambda: uow.logins.succeeded(attempt, login.user_id))
    return login


def _check(uow: UnitOfWork, hasher: PasswordHasher, attempt: LoginAttempt, password: str) -> Login:
    username = attempt.username
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
        rehashed = hasher.hash(password)  # outside the transaction, like every hash
        _write(uow, lambda: uow.users.replace_password_hash(stored.user_id, rehashed))
    return Login(stored.user_id, created=False)


def _throttle(uow: UnitOfWork, attempt: LoginAttempt) -> Throttle:
    with uow:
        return uow.logins.throttle(attempt)


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


def _write(uow: UnitOfWork, change: Callable[[], None]) -> None:
    def work() -> None:
        with uow:
            change()
            uow.commit()

    with_retries(uow, work)
