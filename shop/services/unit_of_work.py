"""The ports the service layer needs from storage, and its retry policy."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Protocol, Self, TypeVar
from uuid import UUID

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_random_exponential

from shop.domain.idempotency import Replay, RequestKey
from shop.domain.logins import LoginAttempt, Throttle
from shop.domain.wallets import Credentials, PurchaseOutcome, TransferOutcome, WalletDocument

T = TypeVar("T")

# A fresh attempt is worth starting only with this much of the request's budget left.
MIN_ATTEMPT_SECONDS = 0.05


class TransientStorageError(Exception):
    """A database failure that a fresh attempt of the whole unit of work may not hit.

    ``retryable`` is False where another attempt would only wait again (a statement that ran
    out of time, a row that stayed busy for the whole budget): those go straight to a 503.
    """

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class UserRepository(Protocol):
    def credentials(self, username: str) -> Credentials | None: ...

    def create(self, username: str, password_hash: str, balance: int) -> int | None: ...

    def replace_password_hash(self, user_id: int, password_hash: str) -> None: ...

    def wallet(self, user_id: int) -> WalletDocument | None: ...


class PurchaseRepository(Protocol):
    def buy(self, user_id: int, item: str, price: int, attempt: UUID) -> PurchaseOutcome:
        """Debit and record one item; an ``attempt`` already recorded reports success."""
        ...


class TransferRepository(Protocol):
    def transfer(
        self, sender_id: int, recipient: str, amount: int, attempt: UUID
    ) -> TransferOutcome:
        """Move coins once per ``attempt``; an attempt already recorded reports success."""
        ...


class IdempotencyRepository(Protocol):
    def claim(self, key: RequestKey) -> Replay | None:
        """Reserve ``key`` in this unit, or return what the first request with it stored.

        Waits for a concurrent holder of the same key to finish first.
        """
        ...

    def record(self, key: RequestKey, outcome: str) -> None:
        """Store the outcome of the request that claimed ``key`` (same transaction)."""
        ...


class LoginRepository(Protocol):
    def throttle(self, attempt: LoginAttempt) -> Throttle:
        """Return the longest lockout in force for this attempt (scope None: none)."""
        ...

    def failed(self, attempt: LoginAttempt) -> None:
        """Count a wrong password against the pair, the account and the address."""
        ...

    def succeeded(self, attempt: LoginAttempt, user_id: int) -> None:
        """Clear the attempt's pair count and remember its address as known for the user."""
        ...


class UnitOfWork(Protocol):
    """One database transaction; rolled back unless ``commit()`` is called."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def purchases(self) -> PurchaseRepository: ...

    @property
    def transfers(self) -> TransferRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def logins(self) -> LoginRepository: ...

    @property
    def retry_attempts(self) -> int: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def on_retry(self, reason: str) -> None: ...

    def remaining(self) -> float | None:
        """Seconds left of the request's time budget (None: no budget)."""
        ...

    def detach(self) -> None:
        """Give back pooled resources before slow work that needs no database."""
        ...

    def exclusive(self, *keys: str) -> AbstractContextManager[None]:
        """Hold one of this worker's few slots for each key (a user) while touching its row."""
        ...


def with_retries(uow: UnitOfWork, work: Callable[[], T]) -> T:
    """Run ``work`` (which opens ``uow`` itself) again on transient storage errors.

    The whole unit of work is repeated, never a half-done one: the failed
    transaction has already been rolled back when the error reaches here. Attempts stop
    at ``retry_attempts`` or when the request's budget could not cover another one.
    The first attempt runs outside tenacity, whose set-up costs more than most requests'
    own Python work; tenacity takes over only after a transient failure.
    """
    try:
        return work()
    except TransientStorageError as error:
        if not _worth_another(uow, error, attempts_made=1):
            raise
        uow.on_retry(error.reason)

    def stop(state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if not isinstance(error, TransientStorageError):
            return True
        return not _worth_another(uow, error, attempts_made=state.attempt_number + 1)

    def count(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        uow.on_retry(error.reason if isinstance(error, TransientStorageError) else "unknown")

    def wait(state: RetryCallState) -> float:
        seconds = backoff(state)
        left = uow.remaining()
        return seconds if left is None else max(0.0, min(seconds, left - MIN_ATTEMPT_SECONDS))

    backoff = wait_random_exponential(multiplier=0.01, max=0.2)
    retrying = Retrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception(lambda e: isinstance(e, TransientStorageError)),
        before_sleep=count,
        reraise=True,
    )
    return retrying(work)


def _worth_another(uow: UnitOfWork, error: TransientStorageError, attempts_made: int) -> bool:
    if not error.retryable or attempts_made >= uow.retry_attempts:
        return False
    left = uow.remaining()
    return left is None or left > MIN_ATTEMPT_SECONDS
