"""Read models for what a user owns and outcomes of the writes that change it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WalletDocument:
    """A user's balance, inventory and grouped coin history: the JSON text of the
    ``GET /api/info`` document in SPEC.md, rendered by the data layer in the same statement
    that reads it. A history of 1,000 counterparties is never decoded into Python objects
    only to be encoded again (that round trip cost more than the query itself)."""

    json: str


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
