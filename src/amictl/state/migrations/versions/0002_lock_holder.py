"""locks.caller: the caller identity (ARN) of the apply that holds a lock.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("locks", sa.Column("caller", sa.String(512)))


def downgrade() -> None:
    with op.batch_alter_table("locks") as batch:
        batch.drop_column("caller")
