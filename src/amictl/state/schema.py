"""Schema revisions of the state store (Alembic, shipped in ``amictl/state/migrations``).

Every store carries its revision in ``alembic_version``. When a :class:`~amictl.state.Store`
opens one, :func:`ensure` compares it with the newest revision this amictl knows (head):

* ``current``: nothing to do.
* ``empty`` (a new database) and, on SQLite, ``legacy`` (a file made before migrations existed:
  amictl tables, no ``alembic_version``) and ``behind``: upgraded on the spot (SQLite is one
  user's file; the baseline revision adopts a legacy file's tables and checks their columns).
* On PostgreSQL, a shared store that is ``legacy`` or ``behind`` is NOT upgraded behind the
  team's back: that is ``amictl state migrate`` (runners with an older amictl are refused after
  it, see ``ahead``); a new empty database is set up on first use.
* ``ahead``: the store was migrated by a newer amictl: refused with a clear message, never
  written to.

Migrations run under a lock: an exclusive SQLite transaction (SQLite DDL is transactional),
a transaction-level advisory lock on PostgreSQL; a second process waits, then finds the
work done.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ..errors import StateError
from .tables import meta

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key of schema migrations (any fixed 64-bit number; "amictl" in ASCII)
MIGRATE_LOCK = 0x616D6963746C


# Revision files are named ``NNNN_what.py`` with ``revision = "NNNN"``, each revising the one
# before (tests/test_team_state.py checks it against Alembic's own reading). Opening a store
# reads the names only: Alembic itself is imported when a migration runs.
@functools.cache
def _revisions() -> tuple[str, ...]:
    names = (p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))
    return tuple(sorted(names))


def revisions() -> list[str]:
    """Every revision this amictl knows, oldest first."""
    return list(_revisions())


def head() -> str:
    return _revisions()[-1]


def alembic_revisions() -> list[str]:
    """The same, as Alembic reads the revision chain (``down_revision`` links)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


_AUTHORITY = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)")


def _mask(text: str) -> str:
    """The password hidden by pattern: from the user's ``:`` to the LAST ``@`` before the host
    (a password with an ``@`` in it hides whole), and in ``?password=``."""
    text = re.sub(r"(://[^:/?#@]*):[^/?#]*@", r"\1:***@", text)
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", text)


class BadStateUrl(StateError):
    """A state URL that cannot mean what it says: bad input (exit 2)."""

    exit_code = 2


def check_url(url: str) -> None:
    """Refuse, naming the fix, a URL whose password holds an ``@`` (SQLAlchemy and libpq would
    take its tail for the host, and print it) or whose port is not a number."""
    m = _AUTHORITY.match(url)
    if not m:
        return
    authority = m.group(1)
    if authority.count("@") > 1:
        raise BadStateUrl(
            f"the state store URL {_mask(url)} has more than one '@' before its host: a password "
            "with an '@' in it must be written %40 there",
            hint="better, keep the password out of the URL: PGPASSWORD or ~/.pgpass (docs/team.md)",
        )
    for host in authority.rsplit("@", 1)[-1].split(","):
        if host.startswith("[") and "]" not in host:
            raise BadStateUrl(
                f"the state store URL {_mask(url)} opens an IPv6 address with '[' but never "
                "closes it",
                hint="e.g. postgresql://amictl_app@[2001:db8::5]:5432/amictl",
            )
        port = host.rsplit("]", 1)[-1] if host.startswith("[") else host
        port = port.split(":", 1)[1] if ":" in port else ""
        if port and not port.isdigit():
            raise BadStateUrl(
                f"the state store URL {_mask(url)} has the port {port!r}: a port is a number",
                hint="e.g. postgresql://amictl_app@db.internal:5432/amictl",
            )


def safe_url(engine_or_url: sa.Engine | str) -> str:
    """The URL with its password hidden, in the user part and in a ``?password=`` query
    parameter (libpq takes it there too); also in a URL SQLAlchemy cannot parse, or would
    split wrongly (a password with an ``@``)."""
    if isinstance(engine_or_url, str):
        m = _AUTHORITY.match(engine_or_url)
        if m and m.group(1).count("@") > 1:
            return _mask(engine_or_url)
    try:
        url = (
            engine_or_url.url
            if isinstance(engine_or_url, sa.Engine)
            else sa.make_url(engine_or_url)
        )
    except (sa.exc.ArgumentError, ValueError):
        return _mask(str(engine_or_url))
    secret = [k for k in url.query if k.lower() == "password"]
    if secret:
        url = url.update_query_dict({k: "***" for k in secret})
    return url.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


@dataclass
class SchemaStatus:
    url: str
    backend: str
    revision: str | None
    head: str
    state: str  # empty | legacy | behind | current | ahead
    pending: list[str] = field(default_factory=list)

    @property
    def current(self) -> bool:
        return self.state == "current"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "current": self.current}


def _status(conn: sa.Connection, url: str) -> SchemaStatus:
    tables = set(sa.inspect(conn).get_table_names())
    rev = None
    if "alembic_version" in tables:
        found = [r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
        rev = max(found) if found else None
    h = head()
    known = revisions()
    backend = conn.dialect.name
    if rev is None:
        ours = tables & {t.name for t in meta.sorted_tables}
        state = "legacy" if ours else "empty"
        return SchemaStatus(url, backend, None, h, state, known)
    if rev not in known:
        return SchemaStatus(url, backend, rev, h, "ahead")
    pending = known[known.index(rev) + 1 :]
    return SchemaStatus(url, backend, rev, h, "behind" if pending else "current", pending)


def status(engine: sa.Engine) -> SchemaStatus:
    with engine.connect() as conn:
        return _status(conn, safe_url(engine))


def _ahead_error(st: SchemaStatus) -> StateError:
    return StateError(
        f"the state store {st.url} is at schema revision {st.revision}, newer than this amictl "
        f"knows (up to {st.head}): it was migrated by a newer amictl",
        hint="upgrade amictl on this machine (every runner sharing a store needs the same "
        "or a newer release); the store was not changed",
    )


def ensure(engine: sa.Engine, *, upgrade: bool | None = None) -> SchemaStatus:
    """Check the store's revision and upgrade it where that is safe (see the module doc).

    ``upgrade``: None = the default rule per backend; True = upgrade any older store;
    False = never (only check; refuse a store that is not current).
    """
    st = status(engine)
    if st.current:
        _check_tables(engine, st)
        return st
    if st.state == "ahead":
        raise _ahead_error(st)
    allowed = upgrade
    if allowed is None:
        allowed = engine.dialect.name == "sqlite" or st.state == "empty"
    if not allowed:
        what = {
            "legacy": "was made before schema migrations existed",
            "empty": "is empty (no amictl tables yet)",
        }.get(st.state, f"is at schema revision {st.revision}, older than this amictl's {st.head}")
        raise StateError(
            f"the state store {st.url} {what}",
            hint="upgrade it once for the team: amictl state migrate --state URL "
            "(as a role that may create and alter tables); runners with an older amictl "
            "are refused afterwards, so upgrade them too",
        )
    after = migrate(engine)[1]
    _check_tables(engine, after)
    return after


def _check_tables(engine: sa.Engine, st: SchemaStatus) -> None:
    """A table of the metadata that no revision creates is a developer's missing migration:
    say so, instead of failing later with 'no such table'."""

    with engine.connect() as conn:
        missing = sorted(
            {t.name for t in meta.sorted_tables} - set(sa.inspect(conn).get_table_names())
        )
    if missing:
        raise StateError(
            f"the state store {st.url} is at revision {st.revision} but lacks table(s) "
            f"{', '.join(missing)}: no schema revision of this amictl creates them",
            hint='a developer adds the revision: python -m amictl.state.migrations revision "..." '
            "(docs/team.md)",
        )


def migrate(engine: sa.Engine) -> tuple[SchemaStatus, SchemaStatus]:
    """Upgrade the store to head under the migration lock: (status before, status after)."""
    if engine.dialect.name == "sqlite":
        return _migrate_sqlite(engine)
    try:
        with engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATE_LOCK)))
            return _upgrade(conn, safe_url(engine))
    except sa.exc.ProgrammingError as exc:
        raise _migrate_error(engine, exc) from None


def _migrate_sqlite(engine: sa.Engine) -> tuple[SchemaStatus, SchemaStatus]:
    # A private engine whose transactions really start with BEGIN EXCLUSIVE (pysqlite's own
    # transaction handling would not), so DDL and the version stamp commit together and a
    # second process waits for them (busy_timeout), then sees the new revision.
    if engine.url.database in (None, "", ":memory:"):  # one connection, nobody to wait for
        with engine.begin() as conn:
            return _upgrade(conn, safe_url(engine))
    private = sa.create_engine(engine.url, poolclass=NullPool)

    @sa.event.listens_for(private, "connect")
    def _connect(dbapi_conn: Any, _rec: Any) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.execute("PRAGMA busy_timeout=30000")

    @sa.event.listens_for(private, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN EXCLUSIVE")

    try:
        with private.begin() as conn:
            return _upgrade(conn, safe_url(engine))
    except sa.exc.OperationalError as exc:
        raise _migrate_error(engine, exc) from None
    finally:
        private.dispose()


def _migrate_error(engine: sa.Engine, exc: Exception) -> StateError:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return StateError(
        f"cannot migrate the state store {safe_url(engine)}: {reason}",
        hint="setting up or upgrading the schema needs a role that may create and alter "
        "tables: run `amictl state migrate --state URL` as the owner role (docs/team.md); "
        "nothing was changed",
    )


def _upgrade(conn: sa.Connection, url: str) -> tuple[SchemaStatus, SchemaStatus]:
    before = _status(conn, url)  # again under the lock: another process may have done it
    if before.state == "ahead":
        raise _ahead_error(before)
    if before.current:
        return before, before
    from alembic import command
    from alembic.config import Config
    from alembic.util.exc import CommandError

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    try:
        command.upgrade(cfg, "head")
    except (RuntimeError, CommandError) as exc:
        raise StateError(
            f"cannot migrate the state store {url}: {exc}",
            hint="pass another --state (or move the file aside); nothing was changed",
        ) from None
    return before, _status(conn, url)


def row_counts(engine: sa.Engine) -> dict[str, int]:
    """Rows per amictl table present in the store: the store's own and those of features
    with a table of their own (``channel_promotions``), as :func:`all_metadata` finds them;
    and readable (on PostgreSQL the app role may not read ``plan_signing_keys``,
    docs/team.md: such a table is left out)."""
    tables = {t.name: t for m in all_metadata() for t in m.sorted_tables}
    with engine.connect() as conn:
        present = set(sa.inspect(conn).get_table_names())
        if conn.dialect.name == "postgresql":
            present = {
                name
                for name in present
                if conn.execute(
                    sa.text("SELECT has_table_privilege(:t, 'SELECT')"), {"t": name}
                ).scalar()
            }
        return {
            name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() or 0)
            for name, t in sorted(tables.items())
            if name in present
        }


def all_metadata() -> list[sa.MetaData]:
    """Every ``sa.MetaData`` with tables that an amictl module defines at module level (the
    state store's, and those of features that keep a table of their own, e.g.
    ``amictl.channels.record``): what the revisions must create."""
    import importlib
    import pkgutil

    import amictl

    found: dict[int, sa.MetaData] = {}
    skip = ("amictl.sandbox", "amictl.state.migrations", "amictl.cli")
    for mod in pkgutil.walk_packages(amictl.__path__, "amictl."):
        if mod.name.startswith(skip):
            continue
        module = importlib.import_module(mod.name)
        for value in vars(module).values():
            if isinstance(value, sa.MetaData) and value.tables:
                found[id(value)] = value
    return list(found.values())


def new_revision(message: str) -> str:
    """Developer tool: write the next revision file from the difference between the metadata
    in ``store.py`` and a store migrated to head (alembic autogenerate). Review it, then commit."""
    from alembic import command
    from alembic.config import Config

    nxt = f"{int(head()) + 1:04d}"
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{os.path.join(tmp, 'head.db')}"
        engine = sa.create_engine(url)
        migrate(engine)
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            cfg.attributes["target_metadata"] = all_metadata()
            script = command.revision(cfg, message, autogenerate=True, rev_id=nxt)
        engine.dispose()
    path = str(getattr(script, "path", ""))
    ruff = shutil.which("ruff", path=os.path.dirname(sys.executable)) or shutil.which("ruff")
    if path and ruff:  # the project's formatting, so `make lint` passes as generated
        subprocess.run([ruff, "format", "-q", path], check=False)
    return path
