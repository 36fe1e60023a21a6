"""The ports the service layer needs from storage, and its retry policy."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self, TypeVar
from uuid import UUID

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from shop.domain.wallets import Credentials, PurchaseOutcome, TransferOutcome, WalletDocument

T = TypeVar("T")


class TransientStorageError(Exception):
    """A database failure that a fresh attempt of the whole unit of work may not hit."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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


class UnitOfWork(Protocol):
    """One database transaction; rolled back unless ``commit()`` is called."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def purchases(self) -> PurchaseRepository: ...

    @property
    def transfers(self) -> TransferRepository: ...

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

    def detach(self) -> None:
        """Give back pooled resources before slow work that needs no database."""
        ...


def with_retries(uow: UnitOfWork, work: Callable[[], T]) -> T:
    """Run ``work`` (which opens ``uow`` itself) again on transient storage errors.

    The whole unit of work is repeated, never a half-done one: the failed
    transaction has already been rolled back when the error reaches here.
    The first attempt runs outside tenacity, whose set-up costs more than most requests'
    own Python work; tenacity takes over only after a transient failure.
    """
    try:
        return work()
    except TransientStorageError as error:
        if uow.retry_attempts < 2:
            raise
        uow.on_retry(error.reason)

    def count(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        uow.on_retry(error.reason if isinstance(error, TransientStorageError) else "unknown")

    retrying = Retrying(
        stop=stop_after_attempt(uow.retry_attempts - 1),
        wait=wait_random_exponential(multiplier=0.01, max=0.2),
        retry=retry_if_exception_type(TransientStorageError),
        before_sleep=count,
        reraise=True,
    )
    return retrying(work)
