"""SQL for sending coins."""

from __future__ import annotations

from uuid import UUID

from psycopg.errors import UniqueViolation

from shop.db.errors import violated
from shop.db.statements import Sql, Statements
from shop.domain.wallets import TransferOutcome

# One statement, one round trip. The order of work is forced by one-time filters
# (uncorrelated sub-selects that PostgreSQL evaluates before scanning):
#   1. `locked` takes both row locks in ascending id order, so A->B and B->A
#      cannot deadlock;
#   2. `debit` subtracts only if two distinct rows were locked (the recipient exists
#      and is someone else) and the committed balance covers the amount;
#   3. `credit`, the ledger row and the per-pair total happen only after a debit.
# An attempt already in the ledger (a retry after a lost commit) moves nothing and reports
# success; should it commit while this statement runs, the ledger's unique key refuses
# the second row and the whole statement rolls back (handled below).
TRANSFER = Sql(
    "WITH users transfers transfer_totals",
    """
    WITH already AS (
        SELECT 1 FROM transfers WHERE attempt = %(attempt)s
    ), recipient AS (
        SELECT id, username FROM users WHERE username = %(recipient)s
    ), locked AS (
        SELECT count(*) AS n FROM (
            SELECT id FROM users
             WHERE id = %(sender_id)s OR id = (SELECT id FROM recipient)
             ORDER BY id
               FOR UPDATE
        ) AS ordered
    ), debit AS (
        UPDATE users SET balance = balance - CAST(%(amount)s AS bigint)
         WHERE id = %(sender_id)s
           AND balance >= CAST(%(amount)s AS bigint)
           AND (SELECT n FROM locked) = 2
           AND NOT EXISTS (SELECT 1 FROM already)
        RETURNING id, username
    ), credit AS (
        UPDATE users SET balance = balance + CAST(%(amount)s AS bigint)
         WHERE id = (SELECT id FROM recipient) AND EXISTS (SELECT 1 FROM debit)
        RETURNING id, username
    ), ledger AS (
        INSERT INTO transfers (from_user_id, to_user_id, amount, attempt)
        SELECT %(sender_id)s, id, CAST(%(amount)s AS bigint), %(attempt)s FROM credit
    ), totals AS (
        INSERT INTO transfer_totals (from_user_id, to_user_id, amount, from_username, to_username)
        SELECT %(sender_id)s, c.id, CAST(%(amount)s AS bigint), d.username, c.username
          FROM credit c, debit d
        ON CONFLICT (from_user_id, to_user_id)
        DO UPDATE SET amount = transfer_totals.amount + EXCLUDED.amount
    )
    SELECT (SELECT id FROM recipient) AS recipient_id,
           EXISTS (SELECT 1 FROM users WHERE id = %(sender_id)s) AS sender_exists,
           EXISTS (SELECT 1 FROM credit) OR EXISTS (SELECT 1 FROM already) AS moved
    """,
    writes=True,
)


class SqlTransferRepository:
    """Transfers in PostgreSQL: balances, ledger and per-pair totals in one statement."""

    def __init__(self, db: Statements) -> None:
        self._db = db

    def transfer(
        self, sender_id: int, recipient: str, amount: int, attempt: UUID
    ) -> TransferOutcome:
        params = {"sender_id": sender_id, "recipient": recipient, "amount": amount}
        params["attempt"] = attempt
        try:
            row = self._db.one(TRANSFER, params)
        except UniqueViolation as error:
            if violated(error) != "transfers_attempt_key":
                raise
            # An earlier try of this very request committed: the coins moved once.
            return TransferOutcome(sender_exists=True, recipient_id=None, moved=True)
        return TransferOutcome(
            sender_exists=row.sender_exists, recipient_id=row.recipient_id, moved=row.moved
        )
