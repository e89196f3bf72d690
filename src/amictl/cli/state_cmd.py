"""``state info`` and ``state migrate``: the state store, its backend and schema revision."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import sqlalchemy as sa

from ..durations import plural
from ..errors import AuditTrailBroken
from ..paths import default_state_url
from ..state import locks, schema
from ..state.store import Store, _open_error
from .common import emit, global_options, info, out_console, settings


def _open() -> Store:
    return Store(settings().state, check_schema=False)


@contextmanager
def _reading(store: Store) -> Iterator[None]:
    """A store that fails while read (a server that cannot be reached): a StateError."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        raise _open_error(store.url, store.engine.url.database, exc) from None
    finally:
        store.engine.dispose()


def _missing_file(url: str | None) -> str | None:
    """The URL of a SQLite store whose file does not exist yet, else None."""
    try:
        target = sa.make_url(url or default_state_url())
    except (sa.exc.ArgumentError, ValueError):
        return None  # Store says what is wrong with it
    db = target.database
    if target.get_backend_name() == "sqlite" and db and db != ":memory:":
        return None if os.path.exists(db) else target.render_as_string()
    return None


def register(cli: click.Group) -> None:
    @cli.group("state")
    def state_group() -> None:
        """The state store (SQLite by default, PostgreSQL for teams): its schema and contents."""

    @state_group.command("info")
    @global_options
    def info_cmd() -> None:
        """Where the state store is, its backend, schema revision (current or not), rows per
        table and the apply locks recorded in it. Changes nothing."""
        missing = _missing_file(settings().state)
        if missing:  # say so without creating it
            st = schema.SchemaStatus(missing, "sqlite", None, schema.head(), "empty")
            st.pending = schema.revisions()
            data: dict[str, Any] = {**st.to_dict(), "tables": {}, "locks": []}
        else:
            store = _open()
            with _reading(store):
                st = schema.status(store.engine)
                data = st.to_dict()
                data["tables"] = schema.row_counts(store.engine)
                data["locks"] = locks.holders(store) if st.state != "empty" else []
        if settings().output != "table":
            emit(data)
            return
        advice = {
            "current": "current",
            "behind": f"behind: amictl state migrate applies {', '.join(st.pending)}",
            "legacy": "made before schema migrations: amictl state migrate adopts it",
            "empty": "empty: amictl state migrate (or any command) sets it up",
            "ahead": "NEWER than this amictl knows: upgrade amictl",
        }[st.state]
        rows = [
            {"key": "url", "value": st.url},
            {"key": "backend", "value": st.backend},
            {"key": "schema revision", "value": st.revision or "(none)"},
            {"key": "this amictl's head", "value": st.head},
            {"key": "status", "value": advice},
        ]
        rows += [{"key": f"rows: {t}", "value": n} for t, n in data["tables"].items()]
        for lk in data["locks"]:
            state = "held" if lk["held"] else "stale (holder gone; replaced by the next apply)"
            by = f" by {lk['caller']}" if lk.get("caller") else ""
            rows.append(
                {
                    "key": f"lock: {lk['key']}",
                    "value": f"{lk['owner']}{by}, pid {lk['pid']} on {lk['host']} since "
                    f"{lk['acquired_at']}: {state}",
                }
            )
        emit(data, ["key", "value"], title="state store", table_rows=rows)

    @state_group.command("migrate")
    @global_options
    def migrate_cmd() -> None:
        """Upgrade the state store's schema to this amictl's revision (Alembic migrations,
        under a lock; a store made before migrations is adopted). Idempotent."""
        store = _open()
        with _reading(store):
            before, after = schema.migrate(store.engine)
        applied = [r for r in before.pending if r not in after.pending]
        data = {
            "url": after.url,
            "backend": after.backend,
            "was": before.state,
            "from": before.revision,
            "to": after.revision,
            "applied": applied,
        }
        if settings().output != "table":
            emit(data)
            return
        if not applied:
            info(f"{after.url}: already at revision {after.revision} (current)")
            return
        out_console().print(
            f"{after.url}: {before.revision or '(' + before.state + ')'} -> {after.revision} "
            f"(applied {', '.join(applied)})"
        )

    @state_group.command("verify")
    @global_options
    def verify_cmd() -> None:
        """Check the journal's hash chain: rows edited, deleted (a gap in a plan's chain, or
        the rows after a run's recorded end) or not written by amictl. Exit 3 when it finds
        any; changes nothing."""
        store = Store(settings().state)
        with _reading(store):
            rows, plans, problems = store.verify_journal()
        data = {
            "url": schema.safe_url(store.url),
            "rows": rows,
            "plans": plans,
            "ok": not problems,
            "problems": [p.to_dict() for p in problems],
        }
        if settings().output != "table":
            emit(data)
        elif problems:
            table = [{**p.to_dict(), "plan": p.plan[:12]} for p in problems]
            emit(table, ["seq", "plan", "kind", "detail"], title="journal problems")
        if problems:
            raise AuditTrailBroken(
                f"the journal of {data['url']} was changed: "
                f"{plural(len(problems), 'problem')} in {rows} rows",
                hint="the rows named were edited or deleted outside amictl (only the owner "
                "role may): restore them from a backup, and find out who did it",
            )
        info(
            f"journal intact: {plural(rows, 'row')} of {plural(plans, 'plan')}, every hash chain whole"
        )
