"""Read models for what a user owns and the coins they exchanged."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Holding:
    """How many of one item a user owns."""

    item: str
    quantity: int


@dataclass(frozen=True, slots=True)
class CounterpartyTotal:
    """All coins ever exchanged with one colleague in one direction."""

    username: str
    amount: int


@dataclass(frozen=True, slots=True)
class Wallet:
    """A user's balance, inventory and grouped coin history."""

    coins: int
    inventory: tuple[Holding, ...]
    received: tuple[CounterpartyTotal, ...]
    sent: tuple[CounterpartyTotal, ...]


@dataclass(frozen=True, slots=True)
class TransferOutcome:
    """What the data layer saw when it tried to move coins."""

    sender_exists: bool
    recipient_id: int | None
    moved: bool


@dataclass(frozen=True, slots=True)
class PurchaseOutcome:
    """What the data layer saw when it tried to debit a purchase."""

    user_exists: bool
    bought: bool


@dataclass(frozen=True, slots=True)
class Credentials:
    """A stored user's id and password hash."""

    user_id: int
    password_hash: str
