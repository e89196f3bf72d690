"""Why a state store cannot be opened, and what to do about it: one clear StateError per
case (a PostgreSQL server, a SQLite path that is missing, not SQLite at all, or damaged)."""

from __future__ import annotations

import os

from sqlalchemy.exc import OperationalError

from ..errors import StateError
from .schema import safe_url

_CORRUPT = ("not a database", "malformed", "corrupt")


def _sqlite_header(path: str) -> bool:
    """Whether the file starts as every SQLite database does (an empty file counts: SQLite
    makes a database of it)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return True
    return not head or head == b"SQLite format 3\x00"


def _open_error(url: str, database: str | None, exc: Exception) -> StateError:
    """A StateError for a store that cannot be opened: what is wrong with which path, and the fix."""
    reason = str(getattr(exc, "orig", None) or exc).strip()
    if url.startswith("postgresql"):
        return StateError(
            f"cannot open the state store {safe_url(url)}: {reason.splitlines()[0] if reason else exc}",
            hint="check that the server is up and reachable, the database exists and the role "
            "may log in (password in the URL, PGPASSWORD or ~/.pgpass); see docs/team.md",
        )
    if not database or database == ":memory:":
        return StateError(
            f"cannot open the state store {url}: {reason}",
            hint="check --state / AMICTL_STATE (e.g. sqlite:////path/to/state.db)",
        )
    corrupt = not isinstance(exc, OperationalError) or any(
        word in reason.lower() for word in _CORRUPT
    )
    if corrupt and os.path.isfile(database) and not _sqlite_header(database):
        # no SQLite header: a store overwritten, or some other file (a typo in --state, e.g.
        # /etc/passwd): moving it aside is only advice for the first
        return StateError(
            f"the state store {database} is not a readable SQLite database (not SQLite at "
            f"all: a damaged store, or --state names some other file): {reason}",
            hint="check --state / AMICTL_STATE first (the file was not changed); only if it "
            f"really is amictl's damaged state store, move it aside: mv {database} "
            f"{database}.bad",
        )
    if corrupt and os.path.isfile(database):
        return StateError(
            f"the state store {database} is not a readable SQLite database "
            f"(corrupt or truncated): {reason}",
            hint=f"move it aside: mv {database} {database}.bad (and its -wal/-shm files "
            "if any); amictl will start a new one. Or pass --state / AMICTL_STATE",
        )
    return StateError(
        f"cannot open the state store {database}: {reason}",
        hint=f"check that {os.path.dirname(database) or '.'} exists and is writable "
        "(permissions), or pass --state / AMICTL_STATE",
    )
