"""an append-only audit trail: journal hash chain, signed apply runs, run ends as rows

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 10:50:00

* ``journal`` gets ``prev_hash`` / ``row_hash`` (``amictl.state.chain``); the rows already
  there are sealed now, in order, one chain per plan;
* ``apply_runs`` gets ``plan_signature`` and ``limits_signature`` (``apply --resume`` checks
  both: the stored plan's signature as ``apply`` does, and its limits');
* ``apply_run_ends``: how a run ended, appended (runs are no longer updated);
* on PostgreSQL, every role but the owner loses UPDATE, DELETE and TRUNCATE on the journal,
  plans, apply runs and their ends (the default privileges of docs/team.md gave them), and
  every write to ``alembic_version``: only the owner changes the schema or the audit trail.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from amictl.state.grants import other_roles, revoke

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

APPEND_ONLY = ("journal", "plans", "apply_runs", "apply_run_ends")


def upgrade() -> None:
    with op.batch_alter_table("journal") as batch:
        batch.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("row_hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("apply_runs") as batch:
        batch.add_column(sa.Column("plan_signature", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("limits_signature", sa.String(length=80), nullable=True))
    op.create_table(
        "apply_run_ends",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("ended_at", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("journal_head", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_apply_run_ends_run_id", "apply_run_ends", ["run_id"], unique=False)
    bind = op.get_bind()
    _seal(bind)
    # runs that ended before this revision keep their end, as a row
    op.execute(
        "INSERT INTO apply_run_ends (run_id, ended_at, status) SELECT id, ended_at, status "
        "FROM apply_runs WHERE status <> 'running' AND ended_at IS NOT NULL ORDER BY id"
    )
    if bind.dialect.name == "postgresql":
        _revoke(bind)


def _seal(bind: sa.Connection) -> None:
    from amictl.state.chain import CONTENT, row_hash

    j = sa.table(
        "journal",
        sa.column("seq"),
        sa.column("prev_hash"),
        sa.column("row_hash"),
        *(sa.column(k) for k in CONTENT),
    )
    last: dict[str, str] = {}
    rows = bind.execute(sa.select(j).order_by(j.c.seq)).mappings().all()
    for r in rows:
        prev = last.get(r["plan_checksum"], "")
        h = row_hash(prev, dict(r))
        bind.execute(j.update().where(j.c.seq == r["seq"]).values(prev_hash=prev, row_hash=h))
        last[r["plan_checksum"]] = h


def _revoke(bind: sa.Connection) -> None:
    for table in APPEND_ONLY:
        revoke(bind, table, "UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES")
    revoke(bind, "alembic_version", "INSERT, UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in APPEND_ONLY:
            for role in other_roles(bind, table):
                op.execute(f"GRANT UPDATE, DELETE ON TABLE {table} TO {role}")
    op.drop_index("ix_apply_run_ends_run_id", table_name="apply_run_ends")
    op.drop_table("apply_run_ends")
    with op.batch_alter_table("apply_runs") as batch:
        batch.drop_column("limits_signature")
        batch.drop_column("plan_signature")
    with op.batch_alter_table("journal") as batch:
        batch.drop_column("row_hash")
        batch.drop_column("prev_hash")
