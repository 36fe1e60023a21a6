"""Users, inventory, transfer ledger and per-pair transfer totals.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE users (
            id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            username      text        NOT NULL UNIQUE,
            password_hash text        NOT NULL,
            balance       bigint      NOT NULL CHECK (balance >= 0),
            created_at    timestamptz NOT NULL DEFAULT now()
        );

        -- `spent` keeps the coins paid for this item, so conservation is checkable in SQL:
        -- sum(users.balance) + sum(inventory.spent) = 1000 * count(users).
        CREATE TABLE inventory (
            user_id  bigint NOT NULL REFERENCES users (id),
            item     text   NOT NULL,
            quantity bigint NOT NULL CHECK (quantity > 0),
            spent    bigint NOT NULL CHECK (spent >= 0),
            PRIMARY KEY (user_id, item)
        );

        -- The audit ledger: one row per transfer, never read on the hot path.
        CREATE TABLE transfers (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            from_user_id bigint      NOT NULL REFERENCES users (id),
            to_user_id   bigint      NOT NULL REFERENCES users (id),
            amount       bigint      NOT NULL CHECK (amount > 0),
            created_at   timestamptz NOT NULL DEFAULT now(),
            CHECK (from_user_id <> to_user_id)
        );

        -- Running totals per (sender, recipient), upserted with every transfer, so the
        -- grouped coin history costs one row per counterparty however long the ledger is.
        CREATE TABLE transfer_totals (
            from_user_id bigint NOT NULL REFERENCES users (id),
            to_user_id   bigint NOT NULL REFERENCES users (id),
            amount       bigint NOT NULL CHECK (amount > 0),
            PRIMARY KEY (from_user_id, to_user_id)
        );
        CREATE INDEX transfer_totals_to_user_idx ON transfer_totals (to_user_id, from_user_id);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE transfer_totals, transfers, inventory, users")
