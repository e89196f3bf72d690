"""The approvals' tables (a MetaData of this package; revision 0007 creates them)."""

from __future__ import annotations

import sqlalchemy as sa

meta = sa.MetaData()

# The team's approval thresholds: one row, name "approvals", value JSON.
approval_config = sa.Table(
    "approval_config",
    meta,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("updated_by", sa.String(512)),
)

# Who made each plan: written by `plan --out` when it signs the plan, with the caller's
# STS identity. Never taken from the plan file (its author could write anyone there).
plan_authors = sa.Table(
    "plan_authors",
    meta,
    sa.Column("checksum", sa.String(64), primary_key=True),
    sa.Column("arn", sa.String(512), nullable=False),
    sa.Column("at", sa.String(32), nullable=False),
)

# One row per (plan checksum, approver): a second approval by the same identity, even
# concurrent, is the same row.
plan_approvals = sa.Table(
    "plan_approvals",
    meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("checksum", sa.String(64), nullable=False, index=True),
    sa.Column("arn", sa.String(512), nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("at", sa.String(32), nullable=False),
    sa.UniqueConstraint("checksum", "arn", name="uq_plan_approvals_checksum_arn"),
)
