"""Send coins to a colleague."""

from __future__ import annotations

from uuid import uuid4

from shop.domain import rules
from shop.domain.errors import (
    InsufficientFunds,
    SelfTransfer,
    ShopError,
    UnknownRecipient,
    UnknownUser,
)
from shop.domain.idempotency import request_key
from shop.domain.wallets import TransferOutcome
from shop.services.idempotency import run_once
from shop.services.unit_of_work import UnitOfWork


def send_coins(
    uow: UnitOfWork,
    sender_id: int,
    recipient: str,
    amount: int,
    idempotency_key: str | None = None,
) -> bool:
    """Move ``amount`` coins to ``recipient``, or change nothing; return whether replayed."""
    recipient = rules.normalize_username(recipient, field="toUser")
    rules.check_amount(amount)
    key = request_key(sender_id, idempotency_key, "sendCoin", recipient, amount)
    attempt = uuid4()  # the same on every retry: a retry after a lost commit is a no-op

    def write() -> None:
        outcome = uow.transfers.transfer(sender_id, recipient, amount, attempt)
        refused = _refusal(outcome, sender_id)
        if refused is not None:
            raise _rebuild(refused, recipient)

    with uow.exclusive(f"user:{sender_id}", f"name:{recipient}"):
        return run_once(uow, key, write, lambda reason: _rebuild(reason, recipient))


def _refusal(outcome: TransferOutcome, sender_id: int) -> str | None:
    if outcome.moved:
        return None
    if not outcome.sender_exists:
        return UnknownUser.reason
    if outcome.recipient_id is None:
        return UnknownRecipient.reason
    if outcome.recipient_id == sender_id:
        return SelfTransfer.reason
    return InsufficientFunds.reason


def _rebuild(reason: str, recipient: str) -> ShopError:
    if reason == UnknownUser.reason:
        return UnknownUser("user no longer exists")
    if reason == UnknownRecipient.reason:
        return UnknownRecipient(f"unknown recipient {recipient!r}")
    if reason == SelfTransfer.reason:
        return SelfTransfer("cannot send coins to yourself")
    return InsufficientFunds("not enough coins")
