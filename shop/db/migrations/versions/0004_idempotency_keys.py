"""Idempotency keys: the first outcome of each (user, key), kept for 24 hours.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- Written in the same transaction as the transfer or purchase it guards, so a key
        -- is stored if and only if its request's effects are. `outcome` is NULL only inside
        -- that transaction; others wait on the primary key until it commits or rolls back.
        CREATE TABLE idempotency_keys (
            user_id     bigint      NOT NULL REFERENCES users (id),
            key         text        NOT NULL,
            fingerprint text        NOT NULL,
            outcome     text,
            created_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (user_id, key)
        );
        CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE idempotency_keys")
