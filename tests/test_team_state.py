"""The state store on SQLite and on a real PostgreSQL server: store, journal, resume data,
locks across processes and hosts, schema migrations (Alembic) and `amictl state`."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from amictl.cli.main import cli
from amictl.errors import SafetyError, SigningKeyUnavailable, StateError
from amictl.model import Inventory
from amictl.state import locks, schema
from amictl.state.store import FINAL, Store, meta

pytest_plugins = ["pg"]  # the pg_server, state_url and wait_for fixtures

BASELINE = schema.MIGRATIONS / "versions" / "0001_baseline.py"


def _baseline():  # the frozen tables of revision 0001 = what amictl made before migrations
    spec = importlib.util.spec_from_file_location("baseline_0001", BASELINE)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.frozen


def _journal(store: Store, checksum: str, aid: str, status: str) -> None:
    store.journal_write(
        plan_checksum=checksum,
        action_id=aid,
        type="deregister",
        account="123456789012",
        region="us-east-1",
        resource=f"ami-{aid}",
        status=status,
        caller="arn:aws:iam::123456789012:role/ci",
    )


def _state(args: list[str], url: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["state", *args, "--state", url])
    code = res.exit_code
    if res.exception is not None and hasattr(res.exception, "exit_code"):
        code = res.exception.exit_code  # as amictl.cli.main.main maps it
    elif res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    msg = str(getattr(res.exception, "message", "") or "")
    return code, res.stdout, msg


# ------------------------------------------------------------------ store and journal


def test_store_journal_and_resume_data(state_url):
    store = Store(state_url)
    other = Store(state_url)  # a second process/host sees the same rows
    inv = Inventory(accounts=["123456789012"], regions=["us-east-1"])
    run_id = store.save_inventory(inv)
    got = other.latest_inventory()
    assert got is not None and got[0] == run_id and got[1].accounts == ["123456789012"]
    assert store.plan_key() == other.plan_key() and len(store.plan_key()) == 32

    body = {"checksum": "c" * 64, "actions": [{"id": f"a{i}"} for i in range(1, 5)]}
    store.save_plan(body["checksum"], body)
    store.save_plan(body["checksum"], body)  # idempotent
    assert other.stored_plan(body["checksum"]) == body
    rid = store.start_apply_run(body["checksum"], {"workers": 2})
    _journal(store, body["checksum"], "a1", "intended")
    _journal(store, body["checksum"], "a1", "done")
    _journal(store, body["checksum"], "a2", "failed")
    _journal(store, body["checksum"], "a3", "intended")  # killed in flight
    store.record_origin(body["checksum"], "ami-a1", ["snap-1", "snap-2"])
    # the run never ended (SIGKILL): the other side can resume it
    found = other.resumable()
    assert found is not None
    plan, run, remaining = found
    assert plan == body and run["id"] == rid and run["options"] == {"workers": 2}
    assert remaining == ["a3", "a4"]
    assert other.journal_final_states(body["checksum"]) == {
        "a1": "done",
        "a2": "failed",
        "a3": "intended",
    }
    assert other.origins(body["checksum"]) == {"ami-a1": ["snap-1", "snap-2"]}
    assert other.plan_checksums("ccc") == [body["checksum"]]
    rows = other.journal_rows(plan_checksum=body["checksum"])
    assert [r["status"] for r in rows] == ["intended", "done", "failed", "intended"]
    assert all(r["caller"] for r in rows)
    for aid in ("a3", "a4"):
        _journal(other, body["checksum"], aid, "done")
    other.end_apply_run(rid, "finished")
    assert store.resumable() is None
    assert set(store.journal_final_states(body["checksum"]).values()) <= set(FINAL)


# ------------------------------------------------------------------ locks

HOLDER = """
import sys, time
from amictl.state.store import Store
store = Store(sys.argv[1])
with store.lock(["123456789012/us-east-1"], owner="apply aaaa", caller="arn:aws:iam::123456789012:role/ci-a"):
    print("held", flush=True)
    time.sleep(120)
"""


def _holder(url: str, host: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url],
        env={**os.environ, "AMICTL_HOSTNAME": host},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "held", proc.stderr.read() if proc.stderr else ""
    return proc


def _try_lock(store: Store) -> str | None:
    """None if the lock could be had (and was released again), else the refusal."""
    try:
        with store.lock(["123456789012/us-east-1"], owner="apply bbbb", caller="arn:b"):
            return None
    except SafetyError as exc:
        return exc.message


def test_lock_held_by_another_process_refuses_and_names_it_then_sigkill_releases(
    state_url, monkeypatch, wait_for
):
    store = Store(state_url)
    pg = store.engine.dialect.name == "postgresql"
    # On PostgreSQL the holder is another host; a SQLite store is one machine's.
    monkeypatch.setenv("AMICTL_HOSTNAME", "host-b" if pg else "host-a")
    proc = _holder(state_url, "host-a")
    try:
        refused = _try_lock(store)
        assert refused is not None
        assert "123456789012/us-east-1" in refused
        assert f"pid {proc.pid} on host-a" in refused
        assert "by arn:aws:iam::123456789012:role/ci-a" in refused and "since 20" in refused
        rows = locks.holders(store)
        assert [(r["host"], r["pid"], r["held"]) for r in rows] == [("host-a", proc.pid, True)]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # the server ends the session of a killed process; SQLite sees the pid is gone
        assert wait_for(lambda: _try_lock(store) is None, timeout=10)
        assert locks.holders(store) == []  # the stale row was replaced, then released
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_locks_are_all_or_nothing_and_released(state_url):
    a, b = Store(state_url), Store(state_url)
    with a.lock(["1/r1", "1/r2"], owner="apply a"):
        with pytest.raises(SafetyError, match="1/r2"), b.lock(["1/r2", "1/r3"], owner="apply b"):
            pass
        with b.lock(["1/r3"], owner="apply b"):  # r3 was released by the refused attempt
            pass
    with b.lock(["1/r1", "1/r2", "1/r3"], owner="apply b"):
        assert {r["key"] for r in locks.holders(a)} == {"1/r1", "1/r2", "1/r3"}
    assert locks.holders(a) == []


def test_sqlite_never_takes_over_another_hosts_lock(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/state.db"
    proc = _holder(url, "host-a")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    monkeypatch.setenv("AMICTL_HOSTNAME", "host-b")
    refused = _try_lock(Store(url))
    assert refused and "on host-a" in refused  # its pid means nothing here
    monkeypatch.setenv("AMICTL_HOSTNAME", "host-a")
    assert _try_lock(Store(url)) is None  # on host-a, the dead pid is taken over


# ------------------------------------------------------------------ schema migrations


def test_migrations_match_the_metadata(state_url):
    """Fails when a table or column is added to store.py without its revision (docs/team.md)."""
    store = Store(state_url)
    metas = schema.all_metadata()
    assert meta in metas and any("channel_promotions" in m.tables for m in metas)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metas)
    assert diff == [], f"add a revision: python -m amictl.state.migrations revision '...': {diff}"
    st = schema.status(store.engine)
    assert st.current and st.revision == schema.head() == schema.revisions()[-1]


def test_legacy_sqlite_file_is_adopted_and_upgraded_keeping_its_rows(tmp_path):
    db = tmp_path / "state.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    frozen = _baseline()
    tables = [t for t in frozen.sorted_tables if t.name != "secrets"]  # an older release's file
    frozen.create_all(engine, tables=tables)
    with engine.begin() as c:
        c.execute(
            frozen.tables["journal"]
            .insert()
            .values(
                at="2026-01-01T00:00:00Z",
                plan_checksum="p" * 64,
                action_id="a1",
                type="deregister",
                account="1",
                region="r",
                resource="ami-1",
                status="done",
            )
        )
        c.execute(
            frozen.tables["locks"]
            .insert()
            .values(key="k", owner="apply old", pid=1, host="h", acquired_at="2026")
        )
    engine.dispose()
    url = f"sqlite:///{db}"
    code, out, _ = _state(["info", "-o", "json"], url)
    info = json.loads(out)
    assert code == 0 and info["state"] == "legacy" and info["revision"] is None
    assert info["tables"]["journal"] == 1 and "secrets" not in info["tables"]
    store = Store(url)  # SQLite: upgraded on open
    assert schema.status(store.engine).current
    assert store.journal_final_states("p" * 64) == {"a1": "done"}
    assert len(store.plan_key()) == 32  # the missing table was created
    assert [r["caller"] for r in locks.holders(store)] == [None]  # the new column


def test_a_file_that_is_not_amictls_is_refused_unchanged(tmp_path):
    db = tmp_path / "state.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as c:
        c.exec_driver_sql("CREATE TABLE journal (seq INTEGER PRIMARY KEY, note TEXT)")
    engine.dispose()
    with pytest.raises(StateError, match="journal lacks at, plan_checksum"):
        Store(f"sqlite:///{db}")
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as c:
        assert set(sa.inspect(c).get_table_names()) == {"journal"}  # nothing was changed
    engine.dispose()


def test_store_newer_than_this_amictl_is_refused(state_url):
    store = Store(state_url)
    with store.engine.begin() as c:
        c.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StateError, match="revision 9999, newer than this amictl") as exc:
        Store(state_url)
    assert exc.value.hint and "upgrade amictl" in exc.value.hint
    code, out, _ = _state(["info", "-o", "json"], state_url)
    assert code == 0 and json.loads(out)["state"] == "ahead"
    code, _, msg = _state(["migrate"], state_url)
    assert code == 1 and "newer than this amictl" in msg


def test_postgresql_store_is_migrated_deliberately(pg_server):
    url = pg_server.url()
    engine = sa.create_engine(url)
    _baseline().create_all(engine)  # a shared store made by an amictl before migrations
    engine.dispose()
    with pytest.raises(StateError, match="made before schema migrations") as exc:
        Store(url)
    assert exc.value.hint and "amictl state migrate" in exc.value.hint
    code, out, _ = _state(["migrate", "-o", "json"], url)
    assert code == 0, out
    res = json.loads(out)
    assert res["was"] == "legacy" and res["to"] == schema.head()
    assert res["applied"] == schema.revisions()
    assert ":***@" in res["url"] and ":secret@" not in out
    code, out, _ = _state(["migrate", "-o", "json"], url)
    assert json.loads(out)["applied"] == []  # idempotent
    Store(url)


def test_concurrent_first_opens_migrate_once(state_url):
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Store(state_url).engine.dispose()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = Store(state_url)
    with store.engine.connect() as c:
        versions = c.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    assert [v[0] for v in versions] == [schema.head()]


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_state_info_hides_the_password_and_counts_rows(pg_server):
    url = pg_server.url()
    store = Store(url.replace("postgresql+psycopg://", "postgresql://"))  # the plain scheme
    _journal(store, "d" * 64, "a1", "done")
    code, out, _ = _state(["info", "-o", "json"], url)
    info = json.loads(out)
    assert code == 0 and ":secret@" not in out and ":***@" in info["url"]
    assert info["backend"] == "postgresql" and info["current"] is True
    assert info["tables"]["journal"] == 1 and info["tables"]["plans"] == 0
    code, out, _ = _state(["info"], url)
    assert code == 0 and "current" in out and ":secret@" not in out
    closed = f"postgresql://amictl:secret@127.0.0.1:{_closed_port()}/x"
    for args in (["info"], ["migrate"]):
        code, _, msg = _state(args, closed)
        assert code == 1 and "cannot open the state store" in msg and ":***@" in msg
        assert ":secret@" not in msg and "refused" in msg
    bad = url.replace(":secret@", ":wrong@")
    with pytest.raises(StateError) as exc:
        Store(bad)
    assert "wrong" not in exc.value.message and "password authentication failed" in (
        exc.value.message
    )


def test_packaged_migrations_are_complete():
    files = sorted(p.name for p in (schema.MIGRATIONS / "versions").glob("0*.py"))
    assert [f.split("_", 1)[0] for f in files] == schema.revisions()
    assert schema.alembic_revisions() == schema.revisions()  # one chain, in file order
    assert (schema.MIGRATIONS / "env.py").is_file()
    assert Path(schema.MIGRATIONS / "script.py.mako").is_file()


def _doc_sql(section: str) -> list[str]:
    """The ```sql blocks of a section of docs/team.md, in order."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "team.md").read_text()
    part = text.split(section, 1)[1].split("\n## ", 1)[0]
    return [b.split("```", 1)[0] for b in part.split("```sql\n")[1:]]


def test_the_documented_roles_work_and_only_the_owner_migrates(pg_server):
    import psycopg

    setup, grants = _doc_sql("## The PostgreSQL database and its roles")[:2]
    db = f"team_{os.getpid()}"
    setup = setup.replace("DATABASE amictl ", f"DATABASE {db} ")
    base = f"host=127.0.0.1 port={pg_server.port}"
    with psycopg.connect(f"{base} user=amictl password=secret dbname=postgres") as c:
        c.autocommit = True
        for stmt in filter(str.strip, setup.split(";")):
            c.execute(stmt)
    with psycopg.connect(f"{base} user=amictl_owner password=change-me-owner dbname={db}") as c:
        c.autocommit = True
        for stmt in filter(str.strip, grants.split(";")):
            c.execute(stmt)
    at = f"@127.0.0.1:{pg_server.port}/{db}"
    owner = f"postgresql://amictl_owner:change-me-owner{at}"
    app = f"postgresql://amictl_app:change-me-app{at}"
    with pytest.raises(StateError) as exc:
        Store(app)  # an empty database: the app role cannot set it up
    assert exc.value.hint and "amictl state migrate" in exc.value.hint
    code, _, msg = _state(["migrate"], app)
    assert code == 1 and "permission denied" in msg
    code, out, _ = _state(["migrate", "-o", "json"], owner)
    assert code == 0 and json.loads(out)["applied"] == schema.revisions()
    store = Store(app)  # day to day: rows only
    _journal(store, "e" * 64, "a1", "done")
    with pytest.raises(SigningKeyUnavailable):  # not the signing key (tests/test_signing_key.py)
        store.plan_key()
    store.start_apply_run("e" * 64, {})
    with store.lock(["1/r"], owner="apply e", caller="arn:app"):
        assert [r["held"] for r in locks.holders(store)] == [True]
    # an older shared schema is refused for the app role, upgraded by the owner
    with sa.create_engine(owner).begin() as c:  # back to revision 0001 by the migrations
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(schema.MIGRATIONS))
        cfg.attributes["connection"] = c
        command.downgrade(cfg, "0001")
    with pytest.raises(StateError, match="older than this amictl"):
        Store(app)
    code, out, _ = _state(["migrate", "-o", "json"], owner)
    assert json.loads(out)["applied"] == schema.revisions()[1:]
    Store(app).journal_rows()


def test_in_memory_store_and_a_table_without_its_revision(monkeypatch):
    assert len(Store("sqlite://").plan_key()) == 32
    extra = sa.Table("bakes_without_revision", meta, sa.Column("id", sa.Integer, primary_key=True))
    try:
        with pytest.raises(StateError, match="lacks table.s. bakes_without_revision") as exc:
            Store("sqlite://")
        assert exc.value.hint and "amictl.state.migrations revision" in exc.value.hint
    finally:
        meta.remove(extra)
    Store("sqlite://")


def test_an_unsupported_backend_is_named_with_the_password_hidden():
    with pytest.raises(StateError, match="SQLite or PostgreSQL, not mysql") as exc:
        Store("mysql://u:pw@db/x")
    assert "u:***@db" in exc.value.message and ":pw@" not in exc.value.message
    code, _, msg = _state(["info"], "mysql://u:pw@db/x")
    assert code == 1 and "not mysql" in msg


WATCHED = """
import sys, time
from amictl import interrupts
from amictl.state import locks
from amictl.state.store import Store
locks.WATCH_EVERY = 0.2
store = Store(sys.argv[1])
with store.lock(["123456789012/us-east-1"], owner="apply aaaa"):
    print("held", flush=True)
    deadline = time.monotonic() + 60
    while not interrupts.stop_requested() and time.monotonic() < deadline:
        time.sleep(0.05)
    print("stopped" if interrupts.stop_requested() else "still running", flush=True)
"""


def test_a_holder_whose_session_is_ended_stops_starting_work(pg_server, wait_for):
    """The hint's pg_terminate_backend (or a server restart) takes the lock away: the holder
    notices and stops as on SIGTERM, so two applies never run at once."""
    url = pg_server.url()
    proc = subprocess.Popen(
        [sys.executable, "-c", WATCHED, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        store = Store(url)
        refused = _try_lock(store)
        assert refused is not None
        ident = locks.lock_id("123456789012/us-east-1")
        with store.engine.begin() as c:
            pid = c.execute(
                sa.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid::bigint = :hi AND objid::bigint = :lo"
                ),
                {"hi": (ident >> 32) & 0xFFFFFFFF, "lo": ident & 0xFFFFFFFF},
            ).scalar()
            assert pid and c.execute(sa.select(sa.func.pg_terminate_backend(pid))).scalar()
        assert proc.stdout.readline().strip() == "stopped"
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
        assert wait_for(lambda: _try_lock(store) is None, timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
