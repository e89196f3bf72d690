"""The journal's hash chain (revision 0007): appended rows, each sealed to the one before it.

Every journal row carries ``prev_hash``, the ``row_hash`` of the previous row of the same plan
(``""`` for a plan's first row), and ``row_hash``, SHA-256 over ``prev_hash`` and the row's own
content. A row edited afterwards no longer matches its hash; a row deleted from the middle of
a plan leaves the next row pointing at a hash that is not there; the end of every apply run
records the hash of its plan's last row (``apply_run_ends.journal_head``), so deleting a
plan's last rows, or all of them, is seen too. ``verify`` reads it all and names each break.

Writers of one plan's chain are serialized: on PostgreSQL by a transaction-level advisory lock
per plan (concurrent writers of other plans do not wait), on SQLite by ``BEGIN IMMEDIATE``
and an in-process lock. On PostgreSQL each write is bounded (``AMICTL_JOURNAL_TIMEOUT``,
``amictl.state.timeouts``): a hung server fails the write, which stops the apply as on
SIGTERM, instead of hanging it.

The chain has no secret: it detects changes made behind amictl's back (an owner's UPDATE or
DELETE, a restored backup with rows missing), not someone who rewrites every later row too.
The app role cannot do either: on PostgreSQL it may only INSERT into the journal.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from . import timeouts
from .locks import lock_id
from .tables import apply_run_ends, apply_runs, journal

# The content a row's hash covers, in this order (never reorder: old chains would break).
CONTENT = (
    "at",
    "plan_checksum",
    "action_id",
    "type",
    "account",
    "region",
    "resource",
    "status",
    "error_code",
    "message",
    "caller",
)
_WRITING = threading.Lock()


def row_hash(prev: str, row: Mapping[str, Any]) -> str:
    """SHA-256 over the previous row's hash and this row's content."""
    canon = json.dumps([prev, *(row.get(k) for k in CONTENT)], separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def append(engine: sa.Engine, row: dict[str, Any]) -> str:
    """Insert one journal row at the end of its plan's chain; returns its hash.

    On PostgreSQL the write is bounded twice: by the server (statement and lock timeout) and,
    for a server that does not answer at all (a hung host or backend), by this process: after
    the timeout and 5 s more it raises TimeoutError and leaves the write to its thread (the
    advisory lock keeps a late write and the next one in order)."""
    if engine.dialect.name != "postgresql":
        with _WRITING:
            return _write(engine, row, None)
    limit = timeouts.journal()
    out: list[str | BaseException] = []

    def work() -> None:
        try:
            out.append(_write(engine, row, int(limit * 1000)))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            out.append(exc)

    writer = threading.Thread(target=work, name="amictl-journal-write", daemon=True)
    writer.start()
    writer.join(limit + 5)
    if not out:
        raise TimeoutError(f"the state store did not answer a journal write within {limit:g} s")
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]


def _write(engine: sa.Engine, row: dict[str, Any], timeout_ms: int | None) -> str:
    plan = row["plan_checksum"]
    with engine.connect() as c:
        if timeout_ms is not None:
            for name in ("statement_timeout", "lock_timeout"):
                c.execute(sa.select(sa.func.set_config(name, f"{timeout_ms}ms", True)))
            c.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_id("journal:" + plan))))
        else:
            c.exec_driver_sql("BEGIN IMMEDIATE")
        prev = head(c, plan)
        h = row_hash(prev, row)
        c.execute(journal.insert().values(**row, prev_hash=prev, row_hash=h))
        c.commit()
    return h


def head(c: sa.Connection, plan: str) -> str:
    """The hash of the plan's last journal row ("" when it has none)."""
    q = (
        sa.select(journal.c.row_hash)
        .where(journal.c.plan_checksum == plan)
        .order_by(journal.c.seq.desc())
        .limit(1)
    )
    return str(c.execute(q).scalar() or "")


@dataclass
class Problem:
    seq: int | None
    plan: str
    kind: str  # edited | gap | unsealed | missing-tail
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "plan": self.plan, "kind": self.kind, "detail": self.detail}


def _rows(c: sa.Connection) -> Iterator[Any]:
    cols = [journal.c.seq, journal.c.prev_hash, journal.c.row_hash] + [
        journal.c[k] for k in CONTENT
    ]
    yield from c.execute(sa.select(*cols).order_by(journal.c.seq)).yield_per(2000)


def verify(engine: sa.Engine) -> tuple[int, int, list[Problem]]:
    """(rows, plans, problems) of the whole journal."""
    last: dict[str, str] = {}
    seen: dict[str, set[str]] = {}
    problems: list[Problem] = []
    n = 0
    with engine.connect() as c:
        for r in _rows(c):
            n += 1
            m = r._mapping
            plan = m["plan_checksum"]
            prev = last.get(plan, "")
            if m["row_hash"] is None:
                problems.append(
                    Problem(
                        m["seq"], plan, "unsealed", "the row has no hash: not written by amictl"
                    )
                )
            elif m["row_hash"] != row_hash(m["prev_hash"] or "", m):
                problems.append(
                    Problem(
                        m["seq"],
                        plan,
                        "edited",
                        f"its content does not match its hash (action {m['action_id']}, "
                        f"status {m['status']}): changed after it was written",
                    )
                )
            elif (m["prev_hash"] or "") != prev:
                what = "the plan's first rows" if not prev else "a row before it"
                problems.append(
                    Problem(
                        m["seq"],
                        plan,
                        "gap",
                        f"it follows a row that is not there ({what} of this plan was deleted, "
                        "or changed)",
                    )
                )
            last[plan] = m["row_hash"] or ""
            seen.setdefault(plan, set()).add(m["row_hash"] or "")
        ends = c.execute(
            sa.select(
                apply_run_ends.c.run_id, apply_run_ends.c.journal_head, apply_runs.c.plan_checksum
            )
            .join(apply_runs, apply_runs.c.id == apply_run_ends.c.run_id)
            .where(apply_run_ends.c.journal_head.is_not(None))
            .where(apply_run_ends.c.journal_head != "")
            .order_by(apply_run_ends.c.id)
        ).all()
    for run_id, journal_head, plan in ends:
        if journal_head not in seen.get(plan, set()):
            problems.append(
                Problem(
                    None,
                    plan,
                    "missing-tail",
                    f"apply run {run_id} ended after a journal row that is not there: rows of "
                    "this plan were deleted",
                )
            )
    return n, len(last), problems
