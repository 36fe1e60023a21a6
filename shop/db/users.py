"""SQL for accounts and the one-query wallet document."""

from __future__ import annotations

from shop.db.statements import Sql, Statements
from shop.domain.wallets import Credentials, WalletDocument

CREDENTIALS = Sql(
    "SELECT users",
    "SELECT id, password_hash FROM users WHERE username = %(username)s",
    writes=False,
)

# ON CONFLICT DO NOTHING makes concurrent first logins of one name create one row;
# the losers get no row back and re-read the winner's.
CREATE = Sql(
    "INSERT users",
    """
    INSERT INTO users (username, password_hash, balance)
    VALUES (%(username)s, %(password_hash)s, CAST(%(balance)s AS bigint))
    ON CONFLICT (username) DO NOTHING
    RETURNING id
    """,
    writes=True,
)

REPLACE_HASH = Sql(
    "UPDATE users",
    "UPDATE users SET password_hash = %(password_hash)s WHERE id = %(user_id)s",
    writes=True,
)

# One round trip, and PostgreSQL writes the response body itself: the per-pair totals
# table keeps the cost independent of history length. Every value spliced into the text
# is a number or row_to_json output, so the document is valid JSON by construction (an
# empty list aggregates to NULL, which concat() drops). Counterparties come in code-point
# order (COLLATE "C": the same order under any server locale, and a cheaper sort).
WALLET = Sql(
    "SELECT users inventory transfer_totals",
    """
    SELECT concat(
             '{"coins":', u.balance,
             ',"inventory":[',
             (SELECT string_agg(row_to_json(r)::text, ',')
                FROM (SELECT i.item AS "type", i.quantity
                        FROM inventory i WHERE i.user_id = u.id
                       ORDER BY i.item COLLATE "C") r),
             '],"coinHistory":{"received":[',
             (SELECT string_agg(row_to_json(r)::text, ',')
                FROM (SELECT t.from_username AS "fromUser", t.amount
                        FROM transfer_totals t WHERE t.to_user_id = u.id
                       ORDER BY t.from_username COLLATE "C") r),
             '],"sent":[',
             (SELECT string_agg(row_to_json(r)::text, ',')
                FROM (SELECT t.to_username AS "toUser", t.amount
                        FROM transfer_totals t WHERE t.from_user_id = u.id
                       ORDER BY t.to_username COLLATE "C") r),
             ']}}') AS document
      FROM users u
     WHERE u.id = %(user_id)s
    """,
    writes=False,
)


class SqlUserRepository:
    """Accounts, passwords and wallets in PostgreSQL."""

    def __init__(self, db: Statements) -> None:
        self._db = db

    def credentials(self, username: str) -> Credentials | None:
        row = self._db.first(CREDENTIALS, {"username": username})
        return None if row is None else Credentials(row.id, row.password_hash)

    def create(self, username: str, password_hash: str, balance: int) -> int | None:
        params = {"username": username, "password_hash": password_hash, "balance": balance}
        row = self._db.first(CREATE, params)
        return None if row is None else int(row.id)

    def replace_password_hash(self, user_id: int, password_hash: str) -> None:
        self._db.run(REPLACE_HASH, {"user_id": user_id, "password_hash": password_hash})

    def wallet(self, user_id: int) -> WalletDocument | None:
        row = self._db.first(WALLET, {"user_id": user_id})
        return None if row is None else WalletDocument(row.document)
