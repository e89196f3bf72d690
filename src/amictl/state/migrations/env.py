"""Alembic environment: the connection comes from ``amictl.state.schema`` (``config.attributes``),
or, for developer tooling (``python -m amictl.state.migrations revision``), from ``sqlalchemy.url``."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

config = context.config
connection = config.attributes.get("connection")
# every amictl table, for autogenerate (``schema.all_metadata``); upgrades need none
target_metadata = config.attributes.get("target_metadata")


def _run(conn: sa.Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place: autogenerate emits batch operations
        render_as_batch=conn.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
