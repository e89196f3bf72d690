"""Alembic migrations of the state store, shipped in the package and run programmatically
(``amictl.state.schema``): no ``alembic.ini`` is needed. ``versions/`` holds one file per
schema revision, in order (0001, 0002, ...); see docs/team.md for how a change adds one."""
