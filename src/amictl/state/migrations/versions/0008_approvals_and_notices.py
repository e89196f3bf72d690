"""approvals and notices (issue 29): the team's approval thresholds, who planned each plan,
approvals per plan checksum (amictl.approvals.tables), the notices' journal
(amictl.notify.tables). On PostgreSQL the approvals, the planners and the notices are
append-only for every role but the owner, and only the owner sets the thresholds (the app
role could otherwise approve by editing a row, or turn approvals off).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 10:59:04.770058
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from amictl.state.grants import revoke

revision = "0008"
down_revision = "0007"
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
    op.create_table(
        "notices",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("plan_checksum", sa.String(length=64), nullable=False),
        sa.Column("image_id", sa.String(length=32), nullable=False),
        sa.Column("account", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=256), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("target", sa.String(length=512), nullable=True),
        sa.Column("what", sa.Text(), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notices_image_id"), ["image_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_notices_plan_checksum"), ["plan_checksum"], unique=False
        )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in ("plan_approvals", "plan_authors", "notices"):
            revoke(bind, table, "UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES")
        revoke(bind, "approval_config", "INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES")


def downgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_plan_checksum"))
        batch_op.drop_index(batch_op.f("ix_notices_image_id"))

    op.drop_table("notices")
    op.drop_table("plan_authors")
    with op.batch_alter_table("plan_approvals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_approvals_checksum"))

    op.drop_table("plan_approvals")
    op.drop_table("approval_config")
