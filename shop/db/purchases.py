"""SQL for buying merch."""

from __future__ import annotations

from uuid import UUID

from psycopg.errors import UniqueViolation

from shop.db.errors import violated
from shop.db.statements import Sql, Statements
from shop.domain.wallets import PurchaseOutcome

# A conditional debit is race-free under READ COMMITTED: a concurrent buyer waits for
# the row lock and re-checks `balance >= price` against the committed balance. An attempt
# already in the ledger (a retry after a lost commit) changes nothing and reports success;
# should that attempt commit while this statement runs, the ledger's primary key refuses
# the second row and the whole statement rolls back (handled below).
BUY = Sql(
    "WITH users inventory purchases",
    """
    WITH already AS (
        SELECT 1 FROM purchases WHERE attempt = %(attempt)s
    ), debit AS (
        UPDATE users SET balance = balance - CAST(%(price)s AS bigint)
         WHERE id = %(user_id)s AND balance >= CAST(%(price)s AS bigint)
           AND NOT EXISTS (SELECT 1 FROM already)
        RETURNING id
    ), stock AS (
        INSERT INTO inventory (user_id, item, quantity, spent)
        SELECT id, %(item)s, 1, CAST(%(price)s AS bigint) FROM debit
        ON CONFLICT (user_id, item) DO UPDATE
           SET quantity = inventory.quantity + 1, spent = inventory.spent + EXCLUDED.spent
    ), ledger AS (
        INSERT INTO purchases (attempt, user_id, item, price)
        SELECT %(attempt)s, id, %(item)s, CAST(%(price)s AS bigint) FROM debit
    )
    SELECT EXISTS (SELECT 1 FROM debit) OR EXISTS (SELECT 1 FROM already) AS bought,
           EXISTS (SELECT 1 FROM users WHERE id = %(user_id)s) AS user_exists
    """,
    writes=True,
)


class SqlPurchaseRepository:
    """Purchases in PostgreSQL: debit and inventory in one statement."""

    def __init__(self, db: Statements) -> None:
        self._db = db

    def buy(self, user_id: int, item: str, price: int, attempt: UUID) -> PurchaseOutcome:
        params = {"user_id": user_id, "item": item, "price": price, "attempt": attempt}
        try:
            row = self._db.one(BUY, params)
        except UniqueViolation as error:
            if violated(error) != "purchases_pkey":
                raise
            return PurchaseOutcome(user_exists=True, bought=True)  # an earlier try committed
        return PurchaseOutcome(user_exists=row.user_exists, bought=row.bought)
