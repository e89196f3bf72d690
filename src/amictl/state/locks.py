"""Apply locks: one per account/region, held for the apply's lifetime, naming their holder.

* PostgreSQL (a team's shared store): ``pg_try_advisory_lock`` on a connection of its own,
  held until the apply ends. The server drops the lock when that session ends, however it
  ends: the process exits or is SIGKILLed (the kernel closes its socket), or its host
  vanishes (TCP keepalives, set on the session, notice within about a minute). The
  ``locks`` row only says who holds it (caller ARN, host, pid, since) for the refusal.
* SQLite (one machine): the ``locks`` row is the lock; a row whose process is gone (same
  host, ``pid_alive``) is taken over.

A lock that cannot be had raises :class:`SafetyError` (exit 3) naming the holder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from .. import interrupts
from ..errors import SafetyError
from ..model import now_iso
from ..procs import hostname, pid_alive
from . import timeouts
from .tables import locks


class Store(Protocol):
    """What the locks need of the state store (``store.Store`` has it): its engine."""

    engine: sa.engine.Engine


# Session settings of the lock connection: the server notices a vanished client within
# idle + interval * count seconds (a killed process closes its socket and is noticed at once).
# How often an apply checks that its session still holds its locks (see _Watch).
WATCH_EVERY = 2.0

KEEPALIVE = {
    "tcp_keepalives_idle": "30",
    "tcp_keepalives_interval": "10",
    "tcp_keepalives_count": "3",
}


def lock_id(key: str) -> int:
    """The 64-bit advisory lock number of a lock key (stable across hosts and releases)."""
    digest = hashlib.sha256(b"amictl-lock:" + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def describe(row: Any) -> str:
    """``apply abc by arn:... (pid 12 on host-a, since ...)``, from a ``locks`` row."""
    if row is None:
        return "another apply (it has not recorded its name yet)"
    by = f" by {row.caller}" if getattr(row, "caller", None) else ""
    return f"{row.owner}{by} (pid {row.pid} on {row.host}, since {row.acquired_at})"


def _refuse(key: str, row: Any, hint: str) -> SafetyError:
    return SafetyError(f"another apply holds the lock on {key}: {describe(row)}", hint=hint)


CALLER_MAX = 512  # locks.caller: String(512), enforced by PostgreSQL


def _fit(caller: str | None, most: int) -> str | None:
    """The caller ARNs of a many-account apply, cut to what the column holds (the row only
    names the holder): the first ones whole, then how many more."""
    if caller is None or len(caller) <= most:
        return caller
    arns = caller.split(", ")
    for n in range(len(arns) - 1, 0, -1):
        text = f"{', '.join(arns[:n])} and {len(arns) - n} more"
        if len(text) <= most:
            return text
    return caller[: most - 3] + "..."


@contextmanager
def hold(store: Store, keys: list[str], owner: str, caller: str | None = None) -> Iterator[None]:
    """Hold every key or none, for the duration of the block."""
    wanted = sorted(set(keys))
    caller = _fit(caller, CALLER_MAX)
    if store.engine.dialect.name == "postgresql":
        with _hold_pg(store, wanted, owner, caller):
            yield
    else:
        with _hold_rows(store, wanted, owner, caller):
            yield


def _row(store: Store, key: str) -> Any:

    with store.engine.connect() as c:
        return c.execute(sa.select(locks).where(locks.c.key == key)).first()


def holders(store: Store) -> list[dict[str, Any]]:
    """The ``locks`` rows, each with ``held``: True while its lock is really held (PostgreSQL:
    the advisory lock is granted; SQLite: its process lives, or is on another host), False
    for a row a crashed holder left (the next apply replaces it)."""

    with store.engine.connect() as c:
        insp = sa.inspect(c)
        if "locks" not in insp.get_table_names():
            return []
        have = {col["name"] for col in insp.get_columns("locks")}  # an older revision's too
        cols = [col for col in locks.c if col.name in have]
        rows = [dict(r._mapping) for r in c.execute(sa.select(*cols).order_by(locks.c.key))]
        pg = store.engine.dialect.name == "postgresql"
        for r in rows:
            if pg:
                ident = lock_id(r["key"])
                r["held"] = bool(
                    c.execute(
                        sa.text(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                            "granted AND classid::bigint = :hi AND objid::bigint = :lo "
                            "AND objsubid = 1"
                        ),
                        {"hi": (ident >> 32) & 0xFFFFFFFF, "lo": ident & 0xFFFFFFFF},
                    ).scalar()
                )
            else:
                r["held"] = r["host"] != hostname() or pid_alive(int(r["pid"]))
    return rows


# ------------------------------------------------------------------ PostgreSQL


@contextmanager
def _hold_pg(store: Store, keys: list[str], owner: str, caller: str | None) -> Iterator[None]:

    engine = sa.create_engine(
        store.engine.url,
        poolclass=NullPool,
        # the client side of the same: a vanished server is noticed too
        connect_args={
            **({} if "connect_timeout" in store.engine.url.query else {"connect_timeout": 10}),
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        },
    )
    conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    me = {"owner": owner, "caller": caller, "pid": os.getpid(), "host": hostname()}
    taken: list[str] = []
    watch: _Watch | None = None
    try:
        for name, value in KEEPALIVE.items():
            conn.execute(sa.select(sa.func.set_config(name, value, False)))
        for key in keys:
            got = conn.execute(sa.select(sa.func.pg_try_advisory_lock(lock_id(key)))).scalar()
            if not got:
                backend = conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                        "AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"
                    ),
                    {"hi": (lock_id(key) >> 32) & 0xFFFFFFFF, "lo": lock_id(key) & 0xFFFFFFFF},
                ).scalar()
                hint = "wait for it to finish: the lock goes when its process or connection ends"
                if backend:
                    hint += (
                        f"; if that host is gone for good, a database admin can end its "
                        f"session now: SELECT pg_terminate_backend({backend})"
                    )
                raise _refuse(key, _row(store, key), hint)
            taken.append(key)
            # we hold it: any row left is from a holder whose session ended (crashed)
            with store.engine.begin() as c:
                c.execute(locks.delete().where(locks.c.key == key))
                c.execute(locks.insert().values(key=key, acquired_at=now_iso(), **me))
        watch = _Watch(conn, len(taken), timeouts.lock_check())
        watch.start()
        yield
    finally:
        if watch is not None and not watch.finish():
            # a hung session: closing its socket (no rollback, no unlock, which would wait
            # for it) ends it; the server frees its locks when it notices
            with contextlib.suppress(Exception):
                conn.invalidate()
            taken = []
        try:
            if taken:
                with store.engine.begin() as c:
                    c.execute(
                        locks.delete()
                        .where(locks.c.key.in_(taken))
                        .where(locks.c.pid == me["pid"])
                        .where(locks.c.host == me["host"])
                    )
            for key in taken:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(lock_id(key))))
        except (sa.exc.SQLAlchemyError, OSError):
            pass  # closing the session below releases the locks anyway; a stale row is
            # replaced by the next holder
        finally:
            conn.close()
            engine.dispose()


class _Watch(threading.Thread):
    """Checks, every WATCH_EVERY seconds, that the session still holds its locks. If it does
    not (an admin ended it with pg_terminate_backend, the server restarted, the network
    dropped it), or does not answer within ``timeout`` seconds (a hung server or backend,
    ``AMICTL_LOCK_CHECK_TIMEOUT``), another apply may now take them, or may soon: this one
    is asked to stop as on SIGTERM (``amictl.interrupts``): no new action starts, in-flight
    ones finish and are journaled, the CLI exits 143, and ``apply --resume`` finishes later."""

    def __init__(self, conn: sa.Connection, count: int, timeout: float) -> None:
        super().__init__(name="amictl-lock-watch", daemon=True)
        self.conn, self.count, self.timeout = conn, count, timeout
        self.done = threading.Event()
        self.mutex = threading.Lock()  # the connection is not shared with the release
        self.lost = False
        self.hung = False  # a check went unanswered: the session may not be used again

    def run(self) -> None:
        while not self.done.wait(WATCH_EVERY):
            held = self._check()
            if self.done.is_set():
                return
            if held is None or held < self.count:
                self.lost, self.hung = True, held is None
                interrupts.request_stop(signal.SIGTERM)
                return

    def _check(self) -> int | None:
        """The advisory locks the session holds; None when the server did not answer in time
        (the question is left to hang in a thread of its own)."""
        answer: list[int] = []

        def ask() -> None:
            with self.mutex:
                if self.done.is_set():
                    answer.append(self.count)
                    return
                try:
                    n = self.conn.execute(
                        sa.text(
                            "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() "
                            "AND locktype = 'advisory' AND granted"
                        )
                    ).scalar()
                except (sa.exc.SQLAlchemyError, OSError):
                    n = 0
                answer.append(int(n or 0))

        asking = threading.Thread(target=ask, name="amictl-lock-check", daemon=True)
        asking.start()
        asking.join(self.timeout)
        return answer[0] if answer else None

    def finish(self) -> bool:
        """Stop watching; True when the session may still be used (to release the locks)."""
        self.done.set()
        free = self.mutex.acquire(timeout=self.timeout)
        if free:
            self.mutex.release()
        self.join(timeout=self.timeout + 5)
        return free and not self.hung


# ------------------------------------------------------------------ SQLite


@contextmanager
def _hold_rows(store: Store, keys: list[str], owner: str, caller: str | None) -> Iterator[None]:

    host, pid = hostname(), os.getpid()
    taken: list[str] = []
    try:
        for key in keys:
            try:
                with store.engine.begin() as c:
                    c.execute(
                        locks.insert().values(
                            key=key,
                            owner=owner,
                            caller=caller,
                            pid=pid,
                            host=host,
                            acquired_at=now_iso(),
                        )
                    )
            except IntegrityError:
                with store.engine.begin() as c:
                    row = c.execute(sa.select(locks).where(locks.c.key == key)).first()
                    took = False
                    if row is not None and row.host == host and not pid_alive(row.pid):
                        # only if the row is still the dead holder's: another apply taking
                        # it over at the same moment makes this match nothing
                        took = (
                            c.execute(
                                locks.update()
                                .where(locks.c.key == key)
                                .where(locks.c.pid == row.pid)
                                .where(locks.c.host == row.host)
                                .where(locks.c.acquired_at == row.acquired_at)
                                .values(owner=owner, caller=caller, pid=pid, acquired_at=now_iso())
                            ).rowcount
                            == 1
                        )
                        if not took:
                            row = c.execute(sa.select(locks).where(locks.c.key == key)).first()
                    if not took:
                        raise _refuse(
                            key,
                            row,
                            "wait for it to finish; a crashed one on this host is taken over "
                            "automatically (a SQLite store is one machine's: share a "
                            "PostgreSQL store between hosts, see docs/team.md)",
                        ) from None
            taken.append(key)
        yield
    finally:
        if taken:
            try:
                with store.engine.begin() as c:
                    c.execute(
                        locks.delete().where(locks.c.key.in_(taken)).where(locks.c.pid == pid)
                    )
            except (sa.exc.SQLAlchemyError, OSError):
                # (disk full): the row names this pid; once it exits, the next apply on
                # this host takes the lock over.
                pass
