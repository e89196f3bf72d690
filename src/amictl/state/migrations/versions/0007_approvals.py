"""approvals: the team's thresholds, who planned each plan, approvals per plan checksum

(issue 29, amictl.approvals.tables). Renumber when another branch adds a revision after
0006 (docs/contributing.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 10:52:20.998137
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_config",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.Column("updated_by", sa.String(length=512), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "plan_approvals",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("arn", sa.String(length=512), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("checksum", "arn", name="uq_plan_approvals_checksum_arn"),
    )
    with op.batch_alter_table("plan_approvals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_approvals_checksum"), ["checksum"], unique=False)

    op.create_table(
        "plan_authors",
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("arn", sa.String(length=512), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("checksum"),
    )


def downgrade() -> None:
    op.drop_table("plan_authors")
    with op.batch_alter_table("plan_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_approvals_checksum"))

    op.drop_table("plan_approvals")
    op.drop_table("approval_config")
