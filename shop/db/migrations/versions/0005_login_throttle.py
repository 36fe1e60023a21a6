"""Login throttling: failure counts per scope, and the addresses each account logged in from.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- One row per scope: 'pair' (username and address), 'account' (username only) and
        -- 'address' (address only); the unused column is ''. Kept in PostgreSQL so every
        -- worker and replica sees the same counts.
        CREATE TABLE login_failures (
            scope        text        NOT NULL CHECK (scope IN ('pair', 'account', 'address')),
            username     text        NOT NULL,
            address      text        NOT NULL,
            failures     integer     NOT NULL CHECK (failures >= 0),
            last_failure timestamptz NOT NULL,
            PRIMARY KEY (scope, username, address)
        );
        CREATE INDEX login_failures_last_failure_idx ON login_failures (last_failure);

        CREATE TABLE login_known_addresses (
            user_id      bigint      NOT NULL REFERENCES users (id),
            address      text        NOT NULL,
            last_success timestamptz NOT NULL,
            PRIMARY KEY (user_id, address)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE login_known_addresses, login_failures")
