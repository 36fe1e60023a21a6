"""Buy one item from the catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import uuid4

from shop.domain.catalogue import Item, find_item
from shop.domain.errors import InsufficientFunds, ShopError, UnknownUser
from shop.domain.idempotency import request_key
from shop.services.idempotency import run_once
from shop.services.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class Purchase:
    """The item bought, and whether this answer replays an earlier request's."""

    item: Item
    replayed: bool


def buy_item(
    uow: UnitOfWork, user_id: int, item_name: str, idempotency_key: str | None = None
) -> Purchase:
    """Debit the item's price and add it to the inventory, or change nothing."""
    item = find_item(item_name)
    key = request_key(user_id, idempotency_key, "buy", item.name)
    attempt = uuid4()  # the same on every retry: a retry after a lost commit is a no-op

    def write() -> None:
        outcome = uow.purchases.buy(user_id, item.name, item.price, attempt)
        if not outcome.user_exists:
            raise _rebuild(UnknownUser.reason, item)
        if not outcome.bought:
            raise _rebuild(InsufficientFunds.reason, item)

    with uow.exclusive(f"user:{user_id}"):
        replayed = run_once(uow, key, write, lambda reason: _rebuild(reason, item))
    return Purchase(item, replayed)


def _rebuild(reason: str, item: Item) -> ShopError:
    if reason == UnknownUser.reason:
        return UnknownUser("user no longer exists")
    return InsufficientFunds(f"not enough coins to buy {item.name} ({item.price})")
