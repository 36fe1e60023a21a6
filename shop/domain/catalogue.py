"""The fixed merch catalogue (unlimited stock)."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from shop.domain.errors import UnknownItem


@dataclass(frozen=True, slots=True)
class Item:
    """A catalogue entry; prices are whole coins."""

    name: str
    price: int


CATALOGUE = MappingProxyType(
    {
        item.name: item
        for item in (
            Item("t-shirt", 80),
            Item("cup", 20),
            Item("book", 50),
            Item("pen", 10),
            Item("powerbank", 200),
            Item("hoody", 300),
            Item("umbrella", 200),
            Item("socks", 10),
            Item("wallet", 50),
            Item("pink-hoody", 500),
        )
    }
)


def find_item(name: str) -> Item:
    """Return the item named exactly ``name`` (case-sensitive)."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownItem(f"unknown item {name!r}") from None
