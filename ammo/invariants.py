"""Money invariants, checked after every load run."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shop.domain.rules import STARTING_BALANCE


class InvariantBroken(AssertionError):
    """Coins were created, destroyed or overdrawn."""


def check_money(engine: Engine) -> str:
    """Raise unless no balance is negative and coins are conserved; return a summary."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT count(*) AS users, count(*) FILTER (WHERE balance < 0) AS negative, "
                "coalesce(sum(balance), 0) AS balances, "
                "(SELECT coalesce(sum(spent), 0) FROM inventory) AS spent FROM users"
            )
        ).one()
    expected = STARTING_BALANCE * row.users
    summary = (
        f"{row.users:,} users, {row.balances:,} coins held + {row.spent:,} spent "
        f"= {row.balances + row.spent:,} (expected {expected:,}), {row.negative} negative"
    )
    if row.negative or row.balances + row.spent != expected:
        raise InvariantBroken("MONEY INVARIANT BROKEN: " + summary)
    return summary
