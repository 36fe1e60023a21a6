"""Keep both usernames on each per-pair total, so the grouped history needs no join.

Usernames never change (there is no rename), so the copy cannot go stale. Reading 1,000
counterparties went from 1,000 primary-key lookups into users to none.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE transfer_totals ADD COLUMN from_username text, ADD COLUMN to_username text;
        UPDATE transfer_totals t
           SET from_username = f.username, to_username = r.username
          FROM users f, users r
         WHERE f.id = t.from_user_id AND r.id = t.to_user_id;
        ALTER TABLE transfer_totals
            ALTER COLUMN from_username SET NOT NULL,
            ALTER COLUMN to_username SET NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE transfer_totals DROP COLUMN from_username, DROP COLUMN to_username")
