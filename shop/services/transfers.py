"""Send coins to a colleague."""

from __future__ import annotations

from uuid import uuid4

from shop.domain import rules
from shop.domain.errors import InsufficientFunds, SelfTransfer, UnknownRecipient, UnknownUser
from shop.domain.wallets import TransferOutcome
from shop.services.unit_of_work import UnitOfWork, with_retries


def send_coins(uow: UnitOfWork, sender_id: int, recipient: str, amount: int) -> None:
    """Move ``amount`` coins from the sender to ``recipient``, or change nothing."""
    recipient = rules.normalize_username(recipient, field="toUser")
    rules.check_amount(amount)
    attempt = uuid4()  # the same on every retry: a retry after a lost commit is a no-op

    def work() -> TransferOutcome:
        with uow:
            outcome = uow.transfers.transfer(sender_id, recipient, amount, attempt)
            uow.commit()
            return outcome

    _raise_unless_moved(with_retries(uow, work), sender_id, recipient)


def _raise_unless_moved(outcome: TransferOutcome, sender_id: int, recipient: str) -> None:
    if outcome.moved:
        return
    if not outcome.sender_exists:
        raise UnknownUser("user no longer exists")
    if outcome.recipient_id is None:
        raise UnknownRecipient(f"unknown recipient {recipient!r}")
    if outcome.recipient_id == sender_id:
        raise SelfTransfer("cannot send coins to yourself")
    raise InsufficientFunds("not enough coins")
