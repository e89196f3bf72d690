"""launch-template versions (incremental re-scan, issue 22)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 08:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lt_templates",
        sa.Column("account", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("read_through", sa.Integer(), nullable=False),
        sa.Column("read_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("account", "region", "template_id"),
    )
    op.create_table(
        "lt_versions",
        sa.Column("account", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("account", "region", "template_id", "version"),
    )


def downgrade() -> None:
    op.drop_table("lt_versions")
    op.drop_table("lt_templates")
