"""SQLAlchemy Core store; SQLite by default (``--state`` / ``AMICTL_STATE``).

Inventory runs are kept whole (compressed JSON) with their per-slice status in a
table of its own; the apply journal has one row per action state change, written
before and after every AWS call, so a killed apply can resume from it.

SCHEMA CHANGES: the tables below are the current schema; stores are brought to it by
Alembic revisions in ``amictl/state/migrations/versions/`` (run by ``state/schema.py`` when a
store is opened, or by ``amictl state migrate``), never by ``create_all``. A change that adds
a table or a column here also adds the next revision file (``python -m
amictl.state.migrations revision "add bakes"`` writes it from the difference; review it),
see docs/contributing.md. tests/test_team_state.py fails while the metadata and the
revisions disagree.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, ProgrammingError

from ..errors import SigningKeyUnavailable, StateError
from ..model import Inventory, iso, now_iso
from ..paths import default_state_url
from ..procs import hostname
from . import chain, schema
from . import locks as locks_mod
from .open_errors import _open_error  # noqa: F401  (re-exported: state_cmd uses it)
from .schema import safe_url
from .tables import (  # noqa: F401  (re-exported: the store's tables)
    FINAL,
    PLAN_KEY_ENV,
    PLAN_KEY_NAME,
    UNSETTLED,
    apply_run_ends,
    apply_runs,
    bake_instances,
    bakes,
    journal,
    launch_permissions,
    locks,
    lt_templates,
    lt_versions,
    meta,
    plan_signing_keys,
    plans,
    runs,
    secrets_table,
    slices,
    snapshot_origins,
)


def _inventory_blob(inv: Inventory) -> bytes:
    """zlib(JSON of inv.to_dict()), encoded and compressed item by item: a 20,000-image
    inventory is never held as one list of dicts and one JSON string (issue 14)."""
    z = zlib.compressobj(3)
    parts: list[bytes] = []
    head = inv.to_dict_head()
    parts.append(z.compress(b"{"))
    for n, (key, value) in enumerate(head.items()):
        parts.append(z.compress((", " if n else "").encode() + json.dumps(key).encode() + b": "))
        if key in ("images", "snapshots", "references"):
            parts.append(z.compress(b"["))
            for i, item in enumerate(getattr(inv, key)):
                parts.append(
                    z.compress((", " if i else "").encode() + json.dumps(item.to_dict()).encode())
                )
            parts.append(z.compress(b"]"))
        else:
            parts.append(z.compress(json.dumps(value).encode()))
    parts.append(z.compress(b"}"))
    parts.append(z.flush())
    return b"".join(parts)


def _inventory(blob: bytes) -> Inventory:
    """The inventory ``_inventory_blob`` stored."""
    return Inventory.from_dict(json.loads(zlib.decompress(blob)))


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean the psycopg 3 driver amictl ships with."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Store:
    def __init__(
        self, url: str | None = None, *, upgrade: bool | None = None, check_schema: bool = True
    ) -> None:
        """Open a store and bring its schema up to date (``schema.ensure``; ``upgrade``: see
        there). ``check_schema=False`` opens it as it is (``amictl state info|migrate``)."""
        self.url = normalize_url(url or default_state_url())
        database: str | None = None
        schema.check_url(self.url)
        try:
            backend = sa.make_url(self.url).get_backend_name()
            if backend not in ("sqlite", "postgresql"):
                raise StateError(
                    f"amictl keeps its state in SQLite or PostgreSQL, not {backend}: "
                    f"{safe_url(self.url)}",
                    hint="pass --state / AMICTL_STATE as sqlite:////path/state.db or "
                    "postgresql://user@host/db",
                )
            pg = backend == "postgresql"
            # PostgreSQL: an unreachable server fails in seconds, not after the OS's TCP
            # timeout; a pooled connection the server dropped (idle between two steps of a
            # long apply) is replaced instead of failing the step
            args = {"connect_timeout": 10} if pg and "connect_timeout" not in self.url else {}
            self.engine = sa.create_engine(
                self.url, future=True, pool_pre_ping=pg, connect_args=args
            )
            database = self.engine.url.database
            if self.engine.dialect.name == "sqlite":

                @sa.event.listens_for(self.engine, "connect")
                def _pragmas(conn: Any, _rec: Any) -> None:
                    cur = conn.cursor()
                    cur.execute("PRAGMA journal_mode=WAL")
                    cur.execute("PRAGMA busy_timeout=10000")
                    cur.execute("PRAGMA synchronous=NORMAL")
                    cur.close()

            if self.engine.dialect.name == "sqlite":
                # probe: a corrupt or truncated file fails here, at open, not in mid-command
                with self.engine.connect() as c:
                    c.exec_driver_sql("SELECT count(*) FROM sqlite_master").all()
            if check_schema:
                schema.ensure(self.engine, upgrade=upgrade)
                if self.engine.dialect.name == "sqlite":
                    with self.engine.connect() as c:
                        for table in meta.sorted_tables:
                            c.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).all()
        except (
            sa.exc.DBAPIError,
            sa.exc.ArgumentError,
            sa.exc.NoSuchModuleError,
            # a URL SQLAlchemy cannot parse (port "abc", "[::1"), a query parameter the
            # driver rejects (sqlite ?timeout=abc), a driver amictl does not ship (asyncpg)
            ValueError,
            ImportError,
        ) as exc:
            if getattr(self, "engine", None) is not None:
                self.engine.dispose()
            raise _open_error(self.url, database, exc) from None
        except StateError:
            if getattr(self, "engine", None) is not None:
                self.engine.dispose()
            raise

    # ---- inventory runs
    def save_inventory(self, inv: Inventory) -> int:
        blob = _inventory_blob(inv)
        with self.engine.begin() as c:
            run_id = c.execute(
                runs.insert().values(
                    scanned_at=iso(inv.scanned_at) or now_iso(),
                    complete=inv.complete,
                    accounts=json.dumps(inv.accounts),
                    regions=json.dumps(inv.regions),
                    images=len(inv.images),
                    snapshots=len(inv.snapshots),
                    references=len(inv.references),
                    api_calls=json.dumps(inv.api_calls),
                    duration=inv.duration,
                    fingerprint=inv.fingerprint(),
                    data=blob,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            if inv.slices:
                c.execute(
                    slices.insert(),
                    [
                        dict(
                            run_id=run_id,
                            account=s.account,
                            region=s.region,
                            kind=s.kind,
                            complete=s.complete,
                            items=s.items,
                            error_code=s.error_code,
                            error=s.error,
                        )
                        for s in inv.slices
                    ],
                )
        return int(run_id)

    def latest_inventory(self) -> tuple[int, Inventory] | None:
        with self.engine.connect() as c:
            row = c.execute(
                sa.select(runs.c.id, runs.c.data).order_by(runs.c.id.desc()).limit(1)
            ).first()
        if row is None:
            return None
        return int(row.id), _inventory(row.data)

    def inventories_since(self, since: dt.datetime) -> Iterator[tuple[int, Inventory]]:
        """(run id, inventory) of every run scanned at or after ``since``, oldest first."""
        q = (
            sa.select(runs.c.id, runs.c.data)
            .where(runs.c.scanned_at >= iso(since))
            .order_by(runs.c.scanned_at, runs.c.id)
        )
        with self.engine.connect() as c:
            rows = [(int(r.id), r.data) for r in c.execute(q)]
        for run_id, blob in rows:
            yield run_id, _inventory(blob)

    # ---- launch-permission cache
    def cached_launch_permissions(
        self, keys: list[tuple[str, str, str]], since: dt.datetime
    ) -> dict[str, tuple[dt.datetime, bool, list[str]]]:
        """image id -> (read_at, public, targets) for the (account, region, image) keys read
        at or after ``since``."""
        lp = launch_permissions
        wanted = set(keys)
        out: dict[str, tuple[dt.datetime, bool, list[str]]] = {}
        floor = iso(since) or ""
        for account, region in sorted({(a, r) for a, r, _ in keys}):
            with self.engine.connect() as c:
                rows = c.execute(
                    sa.select(lp.c.image_id, lp.c.read_at, lp.c.body).where(
                        lp.c.account == account, lp.c.region == region, lp.c.read_at >= floor
                    )
                )
                for image_id, read_at, body in rows:
                    if (account, region, image_id) in wanted:
                        d = json.loads(body)
                        at = dt.datetime.fromisoformat(read_at.replace("Z", "+00:00"))
                        out[image_id] = (at, bool(d.get("public")), list(d.get("targets", [])))
        return out

    def save_launch_permissions(
        self, rows: list[tuple[str, str, str, dt.datetime, bool, list[str]]]
    ) -> None:
        """(account, region, image_id, read_at, public, targets) rows, replacing older reads."""
        if not rows:
            return
        lp = launch_permissions
        values = [
            dict(
                account=a,
                region=r,
                image_id=i,
                read_at=iso(at) or now_iso(),
                body=json.dumps({"public": pub, "targets": targets}),
            )
            for a, r, i, at, pub, targets in rows
        ]
        with self.engine.begin() as c:
            for a, r in sorted({(v["account"], v["region"]) for v in values}):
                ids = [v["image_id"] for v in values if v["account"] == a and v["region"] == r]
                for n in range(0, len(ids), 500):
                    c.execute(
                        lp.delete().where(
                            lp.c.account == a, lp.c.region == r, lp.c.image_id.in_(ids[n : n + 500])
                        )
                    )
            c.execute(lp.insert(), values)

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        cols = [
            runs.c[k]
            for k in (
                "id",
                "scanned_at",
                "complete",
                "images",
                "snapshots",
                "references",
                "duration",
            )
        ]
        with self.engine.connect() as c:
            return [
                dict(r._mapping)
                for r in c.execute(sa.select(*cols).order_by(runs.c.id.desc()).limit(limit))
            ]

    # ---- journal
    def journal_write(
        self,
        *,
        plan_checksum: str,
        action_id: str,
        type: str,
        account: str,
        region: str,
        resource: str,
        status: str,
        error_code: str | None = None,
        message: str | None = None,
        caller: str | None = None,
    ) -> None:
        """Append a row at the end of its plan's hash chain (``amictl.state.chain``)."""
        chain.append(
            self.engine,
            dict(
                at=now_iso(),
                plan_checksum=plan_checksum,
                action_id=action_id,
                type=type,
                account=account,
                region=region,
                resource=resource,
                status=status,
                error_code=error_code,
                message=message,
                caller=caller,
            ),
        )

    def journal_final_states(self, plan_checksum: str) -> dict[str, str]:
        """action id -> last status recorded for this plan."""
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(journal.c.action_id, journal.c.status)
                .where(journal.c.plan_checksum == plan_checksum)
                .order_by(journal.c.seq)
            )
            out: dict[str, str] = {}
            for r in rows:
                out[r.action_id] = r.status
        return out

    def journal_rows(
        self,
        since: str | None = None,
        plan_checksum: str | None = None,
        limit: int = 1000,
        plan_prefix: str | None = None,
    ) -> list[dict[str, Any]]:
        q = sa.select(journal).order_by(journal.c.seq.desc()).limit(limit)
        if since:
            q = q.where(journal.c.at >= since)
        if plan_checksum:
            q = q.where(journal.c.plan_checksum == plan_checksum)
        if plan_prefix:
            q = q.where(journal.c.plan_checksum.startswith(plan_prefix, autoescape=True))
        with self.engine.connect() as c:
            return list(reversed([dict(r._mapping) for r in c.execute(q)]))

    def plan_checksums(self, prefix: str) -> list[str]:
        """Every journaled plan checksum that starts with ``prefix``."""
        q = (
            sa.select(journal.c.plan_checksum)
            .where(journal.c.plan_checksum.startswith(prefix, autoescape=True))
            .distinct()
            .limit(10)
        )
        with self.engine.connect() as c:
            return sorted(r.plan_checksum for r in c.execute(q))

    # ---- apply runs
    def start_apply_run(
        self,
        checksum: str,
        options: dict[str, Any],
        *,
        plan_signature: str | None = None,
        limits_signature: str | None = None,
    ) -> int:
        """Append the run's row: its plan, its limits and the signatures --resume checks."""
        with self.engine.begin() as c:
            rid = c.execute(
                apply_runs.insert().values(
                    plan_checksum=checksum,
                    started_at=now_iso(),
                    status="running",
                    options=json.dumps(options, sort_keys=True),
                    pid=os.getpid(),
                    host=hostname(),
                    plan_signature=plan_signature,
                    limits_signature=limits_signature,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return int(rid)

    def end_apply_run(self, run_id: int, status: str) -> None:
        """Append how the run ended, with the hash of its plan's last journal row then."""
        with self.engine.begin() as c:
            plan = c.execute(
                sa.select(apply_runs.c.plan_checksum).where(apply_runs.c.id == run_id)
            ).scalar()
            c.execute(
                apply_run_ends.insert().values(
                    run_id=run_id,
                    ended_at=now_iso(),
                    status=status,
                    journal_head=chain.head(c, str(plan)) if plan else None,
                )
            )

    def latest_apply_run(self) -> dict[str, Any] | None:
        """The newest apply run, its ``status`` and ``ended_at`` from its first end row
        (``running`` when none: still running, or its process died without one)."""
        with self.engine.connect() as c:
            row = c.execute(sa.select(apply_runs).order_by(apply_runs.c.id.desc()).limit(1)).first()
            if row is None:
                return None
            end = c.execute(
                sa.select(apply_run_ends.c.status, apply_run_ends.c.ended_at)
                .where(apply_run_ends.c.run_id == row.id)
                .order_by(apply_run_ends.c.id)
                .limit(1)
            ).first()
        out = dict(row._mapping)
        out["status"], out["ended_at"] = (end.status, end.ended_at) if end else ("running", None)
        try:
            out["options"] = json.loads(out["options"])
        except ValueError:
            out["options"] = {}
        if not isinstance(out["options"], dict):
            out["options"] = {}
        return out

    def record_origin(self, checksum: str, image_id: str, snapshot_ids: list[str]) -> None:
        with self.engine.begin() as c:
            c.execute(
                snapshot_origins.insert().values(
                    plan_checksum=checksum, image_id=image_id, snapshots=json.dumps(snapshot_ids)
                )
            )

    def origins(self, checksum: str) -> dict[str, list[str]]:
        with self.engine.connect() as c:
            rows = c.execute(
                sa.select(snapshot_origins.c.image_id, snapshot_origins.c.snapshots).where(
                    snapshot_origins.c.plan_checksum == checksum
                )
            )
            out: dict[str, list[str]] = {}
            for r in rows:
                out.setdefault(r.image_id, []).extend(json.loads(r.snapshots))
        return out

    def plan_key(self) -> bytes:
        """The key that signs plans made with this store: ``AMICTL_PLAN_KEY`` (hex, at least
        32 bytes) when set, else the store's own, made once at random in
        ``plan_signing_keys``. Raises SigningKeyUnavailable when this connection may not read
        that table (PostgreSQL: only a signer role may, docs/team.md)."""
        env = os.environ.get(PLAN_KEY_ENV)
        if env is not None:
            try:
                key = bytes.fromhex(env.strip())
            except ValueError:
                key = b""
            if len(key) < 32:
                raise SigningKeyUnavailable(
                    f"{PLAN_KEY_ENV} is not a plan-signing key: expected at least 64 hex digits",
                    hint='make one with `python -c "import secrets; print(secrets.token_hex(32))"`',
                )
            return key
        table = plan_signing_keys
        try:
            with self.engine.connect() as c:
                row = c.execute(
                    sa.select(table.c.value).where(table.c.name == PLAN_KEY_NAME)
                ).first()
            if row is None:
                try:
                    with self.engine.begin() as c:
                        c.execute(
                            table.insert().values(name=PLAN_KEY_NAME, value=secrets.token_hex(32))
                        )
                except IntegrityError:
                    pass  # another process made it first
                return self.plan_key()
        except ProgrammingError as exc:  # PostgreSQL: permission denied for table
            if "permission denied" not in str(exc):
                raise
            raise SigningKeyUnavailable(
                f"{safe_url(self.engine)}: this database role may not read the plan-signing "
                "key (table plan_signing_keys): only a signer role signs and verifies plans",
                hint="connect as a role granted amictl_signer (docs/team.md), or set "
                f"{PLAN_KEY_ENV}",
            ) from None
        return bytes.fromhex(row.value)

    def plan_key_or_none(self) -> tuple[bytes | None, str | None]:
        """(the key, None), or (None, why it cannot be read): for plan and apply, which go
        on unsigned when this role is not a signer."""
        try:
            return self.plan_key(), None
        except SigningKeyUnavailable as exc:
            return None, exc.message

    def stored_plan(self, checksum: str) -> dict[str, Any] | None:
        """The plan stored under ``checksum``; a row that is not one (not amictl's) is a
        StateError."""
        with self.engine.connect() as c:
            row = c.execute(sa.select(plans.c.body).where(plans.c.checksum == checksum)).first()
        if row is None:
            return None
        try:
            body = json.loads(zlib.decompress(row.body))
        except (zlib.error, ValueError, TypeError):
            body = None
        if not isinstance(body, dict) or body.get("checksum") != checksum:
            raise StateError(
                f"the plan stored as {checksum[:12]} is not the plan of that checksum: the "
                "row was not written by amictl",
                hint="apply a reviewed plan file instead; `amictl state verify` checks the journal",
            )
        return body

    def latest_plan(self) -> tuple[dict[str, Any], str, str] | None:
        """(body, checksum, stored_at) of the newest plan kept (apply stores each it runs)."""
        q = sa.select(plans.c.checksum, plans.c.stored_at, plans.c.body)
        with self.engine.connect() as c:
            row = c.execute(q.order_by(plans.c.stored_at.desc()).limit(1)).first()
        if row is None:
            return None
        return json.loads(zlib.decompress(row.body)), row.checksum, row.stored_at

    # ---- plans (kept so that an interrupted apply can be resumed)
    def save_plan(self, checksum: str, body: dict[str, Any]) -> None:
        with self.engine.begin() as c:
            exists = c.execute(
                sa.select(plans.c.checksum).where(plans.c.checksum == checksum)
            ).first()
            if exists is None:
                c.execute(
                    plans.insert().values(
                        checksum=checksum,
                        stored_at=now_iso(),
                        body=zlib.compress(json.dumps(body).encode(), 3),
                    )
                )

    def resumable(self) -> tuple[dict[str, Any], dict[str, Any], list[str]] | None:
        """(plan body, its last apply run, ids of the actions still to do) for ``--resume``.

        Only the newest apply run counts, and only while its plan has actions with no final
        journal row (``done``, ``skipped``, ``failed``, ``not-found``): it was interrupted or
        killed. After a run that finished there is nothing to resume, whatever older runs
        left. The run's recorded status is not consulted (rows anyone may append cannot
        decide it); nor is any of this trusted: the caller checks the plan's signature and
        the limits' (``amictl.apply.trust``), and the lock tells a dead run from a live one.
        """
        run = self.latest_apply_run()
        if run is None:
            return None
        body = self.stored_plan(run["plan_checksum"])
        if body is None:
            return None
        states = self.journal_final_states(run["plan_checksum"])
        remaining = [
            a["id"]
            for a in body.get("actions", [])
            if isinstance(a, dict) and states.get(str(a.get("id"))) not in FINAL
        ]
        if not remaining:
            return None
        return body, run, remaining

    def verify_journal(self) -> tuple[int, int, list[chain.Problem]]:
        """(rows, plans, problems) of the journal's hash chain (``amictl.state.chain``)."""
        return chain.verify(self.engine)

    # ---- locks
    @contextmanager
    def lock(self, keys: list[str], owner: str, caller: str | None = None) -> Iterator[None]:
        """Hold every key or none (``amictl.state.locks``: PostgreSQL advisory locks across
        hosts, or rows checked by pid on SQLite); a held one is a SafetyError naming its holder."""
        with locks_mod.hold(self, keys, owner, caller):
            yield
