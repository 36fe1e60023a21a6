"""SQL for accounts and the one-query wallet read."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from shop.domain.wallets import CounterpartyTotal, Credentials, Holding, Wallet

CREDENTIALS = "SELECT id, password_hash FROM users WHERE username = %(username)s"

# ON CONFLICT DO NOTHING makes concurrent first logins of one name create one row;
# the losers get no row back and re-read the winner's.
CREATE = """
    INSERT INTO users (username, password_hash, balance)
    VALUES (%(username)s, %(password_hash)s, CAST(%(balance)s AS bigint))
    ON CONFLICT (username) DO NOTHING
    RETURNING id
    """

REPLACE_HASH = "UPDATE users SET password_hash = %(password_hash)s WHERE id = %(user_id)s"

# One round trip: the per-pair totals table keeps this independent of history length.
WALLET = """
    SELECT u.balance,
           (SELECT coalesce(json_agg(json_build_array(i.item, i.quantity) ORDER BY i.item), '[]')
              FROM inventory i WHERE i.user_id = u.id) AS inventory,
           (SELECT coalesce(json_agg(json_build_array(t.from_username, t.amount)
                                     ORDER BY t.from_username), '[]')
              FROM transfer_totals t WHERE t.to_user_id = u.id) AS received,
           (SELECT coalesce(json_agg(json_build_array(t.to_username, t.amount)
                                     ORDER BY t.to_username), '[]')
              FROM transfer_totals t WHERE t.from_user_id = u.id) AS sent
      FROM users u
     WHERE u.id = %(user_id)s
    """


class SqlUserRepository:
    """Accounts, passwords and wallets in PostgreSQL."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def credentials(self, username: str) -> Credentials | None:
        row = self._conn.exec_driver_sql(CREDENTIALS, {"username": username}).first()
        return None if row is None else Credentials(row.id, row.password_hash)

    def create(self, username: str, password_hash: str, balance: int) -> int | None:
        params = {"username": username, "password_hash": password_hash, "balance": balance}
        user_id: int | None = self._conn.exec_driver_sql(CREATE, params).scalar()
        return user_id

    def replace_password_hash(self, user_id: int, password_hash: str) -> None:
        self._conn.exec_driver_sql(
            REPLACE_HASH, {"user_id": user_id, "password_hash": password_hash}
        )

    def wallet(self, user_id: int) -> Wallet | None:
        row = self._conn.exec_driver_sql(WALLET, {"user_id": user_id}).first()
        if row is None:
            return None
        return Wallet(
            coins=row.balance,
            inventory=tuple(Holding(item, quantity) for item, quantity in row.inventory),
            received=_totals(row.received),
            sent=_totals(row.sent),
        )


def _totals(pairs: list[list[Any]]) -> tuple[CounterpartyTotal, ...]:
    return tuple(CounterpartyTotal(username, amount) for username, amount in pairs)
