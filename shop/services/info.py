"""Show a user's balance, inventory and grouped coin history."""

from __future__ import annotations

from shop.domain.errors import UnknownUser
from shop.domain.wallets import WalletDocument
from shop.services.unit_of_work import UnitOfWork, with_retries


def get_info(uow: UnitOfWork, user_id: int) -> WalletDocument:
    """Return the wallet of ``user_id`` as one consistent snapshot, already rendered."""

    def work() -> WalletDocument | None:
        with uow:
            return uow.users.wallet(user_id)

    wallet = with_retries(uow, work)
    if wallet is None:
        raise UnknownUser("user no longer exists")
    return wallet
