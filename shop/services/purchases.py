"""Buy one item from the catalogue."""

from __future__ import annotations

from uuid import uuid4

from shop.domain.catalogue import Item, find_item
from shop.domain.errors import InsufficientFunds, UnknownUser
from shop.domain.wallets import PurchaseOutcome
from shop.services.unit_of_work import UnitOfWork, with_retries


def buy_item(uow: UnitOfWork, user_id: int, item_name: str) -> Item:
    """Debit the item's price and add it to the inventory, or change nothing."""
    item = find_item(item_name)
    attempt = uuid4()  # the same on every retry: a retry after a lost commit is a no-op

    def work() -> PurchaseOutcome:
        with uow:
            outcome = uow.purchases.buy(user_id, item.name, item.price, attempt)
            uow.commit()
            return outcome

    outcome = with_retries(uow, work)
    if not outcome.user_exists:
        raise UnknownUser("user no longer exists")
    if not outcome.bought:
        raise InsufficientFunds(f"not enough coins to buy {item.name} ({item.price})")
    return item
