"""Table privileges the schema's revisions take away on PostgreSQL (docs/team.md): the
default privileges of a team's setup grant every role row access to each new table; the
audit trail and the team's settings are then narrowed to what the app role may do."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def other_roles(bind: sa.Connection, table: str) -> list[str]:
    """Every role but the current one (the owner running the migration) granted anything on
    ``table``, quoted."""
    found = bind.execute(
        sa.text(
            "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
            "WHERE table_name = :t AND table_schema = current_schema() "
            "AND grantee <> current_user"
        ),
        {"t": table},
    ).scalars()
    return ['"' + str(role).replace('"', '""') + '"' for role in found]


def revoke(bind: sa.Connection, table: str, what: str) -> None:
    """``REVOKE what ON table`` from PUBLIC and every other role granted on it."""
    for role in ["PUBLIC", *other_roles(bind, table)]:
        op.execute(f"REVOKE {what} ON TABLE {table} FROM {role}")
