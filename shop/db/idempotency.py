"""SQL for idempotency keys."""

from __future__ import annotations

from shop.db.statements import Sql, Statements
from shop.domain.idempotency import KEY_LIFETIME_SECONDS, Replay, RequestKey

# Inserting the key takes its primary-key slot for this transaction: a concurrent request
# with the same key waits here until this one commits (then sees it) or rolls back (then
# takes the slot). A key older than its lifetime is taken over as if it were new.
CLAIM = Sql(
    "INSERT idempotency_keys",
    """
    INSERT INTO idempotency_keys AS k (user_id, key, fingerprint)
    VALUES (%(user_id)s, %(key)s, %(fingerprint)s)
    ON CONFLICT (user_id, key) DO UPDATE
       SET fingerprint = EXCLUDED.fingerprint, outcome = NULL, created_at = now()
     WHERE k.created_at < now() - %(lifetime)s * interval '1 second'
    RETURNING 1
    """,
    writes=True,
)

STORED = Sql(
    "SELECT idempotency_keys",
    """
    SELECT fingerprint, outcome FROM idempotency_keys
     WHERE user_id = %(user_id)s AND key = %(key)s
    """,
    writes=False,  # runs inside the transaction CLAIM opened
)

RECORD = Sql(
    "UPDATE idempotency_keys",
    """
    UPDATE idempotency_keys SET outcome = %(outcome)s
     WHERE user_id = %(user_id)s AND key = %(key)s
    """,
    writes=True,
)

PURGE = Sql(
    "DELETE idempotency_keys",
    """
    DELETE FROM idempotency_keys
     WHERE created_at < now() - %(lifetime)s * interval '1 second'
    """,
    writes=True,
)


class SqlIdempotencyRepository:
    """Idempotency keys in PostgreSQL, stored with the effects they guard."""

    def __init__(self, db: Statements) -> None:
        self._db = db

    def claim(self, key: RequestKey) -> Replay | None:
        params = {"user_id": key.user_id, "key": key.key, "fingerprint": key.fingerprint}
        if self._db.first(CLAIM, {**params, "lifetime": KEY_LIFETIME_SECONDS}) is not None:
            return None
        row = self._db.one(STORED, params)
        return Replay(row.fingerprint, row.outcome)

    def record(self, key: RequestKey, outcome: str) -> None:
        self._db.run(RECORD, {"user_id": key.user_id, "key": key.key, "outcome": outcome})
