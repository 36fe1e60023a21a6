"""Attempt ids on writes, so a retried request can never apply twice; a purchase ledger.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- One id per request, written by the same statement that moves the coins: if a
        -- retry after a lost connection finds it taken, the first attempt had committed.
        ALTER TABLE transfers ADD COLUMN attempt uuid;
        CREATE UNIQUE INDEX transfers_attempt_key ON transfers (attempt);

        -- The purchase ledger, for audit, keyed by the same kind of attempt id.
        CREATE TABLE purchases (
            attempt    uuid        PRIMARY KEY,
            user_id    bigint      NOT NULL REFERENCES users (id),
            item       text        NOT NULL,
            price      bigint      NOT NULL CHECK (price > 0),
            created_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE purchases; DROP INDEX transfers_attempt_key;")
    op.execute("ALTER TABLE transfers DROP COLUMN attempt")
