"""plan-signing key in a table of its own, readable by the owner and a signer role only

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:10:00

Up to 0004 the key that signs plans sat in ``secrets``, a table every role that reads rows
(the app role) could read, so anyone who could apply could also sign a plan. It moves to
``plan_signing_keys``; on PostgreSQL every privilege on that table is revoked from every role
but its owner (the default privileges of docs/team.md would otherwise give it to the app
role), and docs/team.md grants it to a signer role only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLE = "plan_signing_keys"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(
        f"INSERT INTO {TABLE} (name, value) SELECT name, value FROM secrets WHERE name = 'plan-key'"
    )
    op.execute("DELETE FROM secrets WHERE name = 'plan-key'")
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"REVOKE ALL ON TABLE {TABLE} FROM PUBLIC")
        grantees = bind.execute(
            sa.text(
                "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
                "WHERE table_name = :t AND grantee <> current_user"
            ),
            {"t": TABLE},
        ).scalars()
        for role in list(grantees):
            quoted = '"' + str(role).replace('"', '""') + '"'
            op.execute(f"REVOKE ALL ON TABLE {TABLE} FROM {quoted}")


def downgrade() -> None:
    op.execute(
        f"INSERT INTO secrets (name, value) SELECT name, value FROM {TABLE} WHERE name = 'plan-key'"
    )
    op.drop_table(TABLE)
