"""Baseline: the state store's tables as they were before migrations existed.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

The tables are FROZEN here (a copy, not ``amictl.state.store.meta``): a later change to the
metadata adds its own revision, so a store made at this revision is upgraded by it.

A state file made by amictl before migrations existed (``meta.create_all``, no
``alembic_version`` table) is adopted: each table it already has is checked to have every
column listed here (else the upgrade stops, naming what is missing, and nothing is changed);
the tables it lacks (it was made by an older release) are created.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

frozen = sa.MetaData()

sa.Table(
    "inventory_runs",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("scanned_at", sa.String(32), nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("accounts", sa.Text, nullable=False),
    sa.Column("regions", sa.Text, nullable=False),
    sa.Column("images", sa.Integer, nullable=False),
    sa.Column("snapshots", sa.Integer, nullable=False),
    sa.Column("references", sa.Integer, nullable=False),
    sa.Column("api_calls", sa.Text, nullable=False),
    sa.Column("duration", sa.Float, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
sa.Table(
    "inventory_slices",
    frozen,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("inventory_runs.id"), nullable=False, index=True),
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("complete", sa.Boolean, nullable=False),
    sa.Column("items", sa.Integer, nullable=False),
    sa.Column("error_code", sa.String(80)),
    sa.Column("error", sa.Text),
)
sa.Table(
    "journal",
    frozen,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("plan_checksum", sa.String(64), nullable=False, index=True),
    sa.Column("action_id", sa.String(32), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("resource", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error_code", sa.String(80)),
    sa.Column("message", sa.Text),
    sa.Column("caller", sa.String(256)),
)
sa.Table(
    "plans",
    frozen,
    sa.Column("checksum", sa.String(64), primary_key=True),
    sa.Column("stored_at", sa.String(32), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
)
sa.Table(
    "apply_runs",
    frozen,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("plan_checksum", sa.String(64), nullable=False, index=True),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("ended_at", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.String(256), nullable=False),
)
sa.Table(
    "snapshot_origins",
    frozen,
    sa.Column("plan_checksum", sa.String(64), nullable=False, index=True),
    sa.Column("image_id", sa.String(32), nullable=False),
    sa.Column("snapshots", sa.Text, nullable=False),
)
sa.Table(
    "secrets",
    frozen,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)
sa.Table(
    "locks",
    frozen,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(256), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("host", sa.String(256), nullable=False),
    sa.Column("acquired_at", sa.String(32), nullable=False),
)

# amictl.channels.record: promotions and rollbacks
sa.Table(
    "channel_promotions",
    frozen,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("account", sa.String(12), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("family", sa.String(128), nullable=False, index=True),
    sa.Column("channel", sa.String(128), nullable=False),
    sa.Column("version", sa.String(128)),
    sa.Column("image_id", sa.String(32), nullable=False),
    sa.Column("previous_image_id", sa.String(32)),
    sa.Column("parameter_version", sa.Integer),
    sa.Column("caller", sa.String(256)),
)


def upgrade() -> None:
    bind = op.get_bind()
    insp = sa.inspect(bind)
    present = set(insp.get_table_names())
    damaged = []
    for table in frozen.sorted_tables:
        if table.name in present:
            have = {c["name"] for c in insp.get_columns(table.name)}
            missing = [c.name for c in table.columns if c.name not in have]
            if missing:
                damaged.append(f"{table.name} lacks {', '.join(missing)}")
    if damaged:
        raise RuntimeError("this is not a state store amictl can adopt: " + "; ".join(damaged))
    for table in frozen.sorted_tables:
        if table.name not in present:
            table.create(bind)


def downgrade() -> None:
    for table in reversed(frozen.sorted_tables):
        op.drop_table(table.name)
