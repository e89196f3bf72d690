"""Issue 32: a hostile member of the team, with the roles and grants docs/team.md sets up, on a
real PostgreSQL server (the SQL is read from the doc: ``pg.TeamDb``).

* a forged interrupted apply (an unsigned plan, or a signed one with limits nobody gave) is
  refused by ``apply --resume`` and the sandbox keeps every image (DescribeImages);
* the app role cannot UPDATE, DELETE or TRUNCATE the audit trail nor write ``alembic_version``
  (PostgreSQL refuses); an owner's edit or deletion is reported by ``state verify`` (exit 3);
* PostgreSQL stopping mid-apply ends it as SIGTERM does (exit 143, the summary, the hint) and
  ``--resume`` finishes exactly the rest; a frozen lock session stops the apply within the
  configured bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from amictl.state import locks, schema
from amictl.state.store import FINAL, PLAN_KEY_ENV, Store
from cli_fleet import invoke
from test_apply import expected_end, fleet, live_images, live_snapshots

pytest_plugins = ["pg"]  # the pg_server, team_db and wait_for fixtures

POLICY = """format: 1
rules:
  - name: old
    select: {{families: ["*"], older_than: 30d}}
    keep: {{latest: {keep}}}
    retire: {{deregister: 0d, snapshots: delete}}
"""


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch):
    monkeypatch.delenv(PLAN_KEY_ENV, raising=False)  # the signer reads the table's key


class Team:
    """One account of the sandbox and the team's database: ``run(role, ...)`` is amictl as
    that role."""

    def __init__(self, env, team, tmp_path) -> None:  # team: pg.TeamDb
        self.env, self.team, self.tmp = env, team, tmp_path
        self.vars = env.cli_env(tmp_path)
        for name, keep in (("team", 3), ("altered", 0), ("lean", 1)):
            (tmp_path / f"{name}.yaml").write_text(POLICY.format(keep=keep))

    def run(self, role: str, *args: str) -> tuple[int, str, str]:
        state = {"AMICTL_STATE": self.team.url(role)}
        return invoke([*args, "--no-progress", *self.env.cli_args()], {**self.vars, **state})

    def plan(self, role: str, policy: str, name: str) -> dict:
        out = self.tmp / name
        code, _, err = self.run(
            role, "plan", "-p", str(self.tmp / f"{policy}.yaml"), "--out", str(out)
        )
        assert code == 0, err
        return json.loads(out.read_text())

    def environ(self, role: str, **more: str) -> dict[str, str]:
        return {**os.environ, **self.vars, "AMICTL_STATE": self.team.url(role), **more}

    def cmd(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "amictl.cli.main",
            *args,
            "--no-progress",
            *self.env.cli_args(),
        ]


def test_a_forged_resume_is_refused_and_the_sandbox_keeps_every_image(env, team_db, tmp_path):
    t = Team(env, team_db, tmp_path)
    env.load(fleet(4))
    before = (live_images(env), live_snapshots(env))
    # the attacker, as the app role: a plan from a policy that keeps nothing, unsigned, which
    # `apply` refuses...
    forged = t.plan("app", "altered", "forged.json")
    assert "signature" not in forged and len(forged["actions"]) > 4
    code, _, err = t.run("signer", "apply", str(tmp_path / "forged.json"), "--yes")
    assert code == 3 and "not signed by this state store" in err
    # ...so it goes in as an interrupted apply of that plan, with limits nobody gave
    app = Store(team_db.url("app"))
    permissive = {"allow_whole_family": True, "max_destroy": 50, "max_share": 1.0}
    fake = "hmac-sha256:" + "0" * 64
    app.save_plan(forged["checksum"], forged)
    rid = app.start_apply_run(
        forged["checksum"], permissive, plan_signature=fake, limits_signature=fake
    )
    app.end_apply_run(rid, "interrupted")
    # the scheduled resume, as the signer, checks the stored plan as apply checks a file
    code, _, err = t.run("signer", "apply", "--resume", "--yes")
    assert code == 3, err
    assert "stored plan" in err and "not signed by this state store" in err
    assert (live_images(env), live_snapshots(env)) == before
    # a plan the store did sign (the plan job made it), but whose apply needs a person's
    # --allow-whole-family: forged limits on its run are not signed, so the defaults hold
    signed = t.plan("signer", "altered", "signed.json")
    assert signed["signature"].startswith("hmac-sha256:")
    code, _, err = t.run("signer", "apply", str(tmp_path / "signed.json"), "--yes")
    assert code == 3 and "blast radius" in err  # a person would have to pass --allow-whole-family
    app.save_plan(signed["checksum"], signed)
    rid = app.start_apply_run(
        signed["checksum"], permissive, plan_signature=signed["signature"], limits_signature=fake
    )
    app.end_apply_run(rid, "interrupted")
    code, _, err = t.run("signer", "apply", "--resume", "--yes")
    assert code == 3, err
    assert "limits of the interrupted apply are not signed" in err
    assert "blast radius" in err and "every available image of family f" in err
    assert (live_images(env), live_snapshots(env)) == before  # DescribeImages: all kept


def _journal(store: Store, plan: str, rows: list[tuple[str, str]]) -> None:
    for aid, status in rows:
        store.journal_write(
            plan_checksum=plan,
            action_id=aid,
            type="deregister",
            account="123456789012",
            region="us-east-1",
            resource=f"ami-{aid[1:]:0>8}",
            status=status,
            caller="arn:aws:sts::123456789012:assumed-role/amictl-apply/gha",
        )


def _verify(team) -> tuple[int, dict]:
    code, out, err = invoke(["state", "verify", "--state", team.url("app"), "-o", "json"])
    assert "Traceback" not in err
    return code, json.loads(out)


def test_the_app_role_only_appends_to_the_audit_trail_and_verify_sees_the_owners_edits(
    team_db,
):
    import psycopg

    app = Store(team_db.url("app"))
    a, b = "a" * 64, "b" * 64
    _journal(app, a, [("a1", "intended"), ("a1", "done"), ("a2", "intended"), ("a2", "done")])
    rid = app.start_apply_run(b, {})
    _journal(app, b, [("a1", "intended"), ("a1", "done")])
    app.end_apply_run(rid, "finished")
    app.save_plan(b, {"checksum": b})
    refused = [
        "DELETE FROM journal",
        "UPDATE journal SET status = 'skipped'",
        "TRUNCATE journal",
        "DELETE FROM apply_runs",
        "UPDATE apply_runs SET options = '{\"allow_whole_family\": true}'",
        "DELETE FROM apply_run_ends",
        "UPDATE apply_run_ends SET status = 'interrupted'",
        "DELETE FROM plans",
        "UPDATE plans SET stored_at = ''",
        "UPDATE alembic_version SET version_num = '9999'",
        "DELETE FROM alembic_version",
        "INSERT INTO alembic_version VALUES ('9999')",
        "TRUNCATE alembic_version",
    ]
    # the doc's grants for a schema made by another role end the same way
    team_db.sql(team_db.dsn("owner"), team_db.regrant)
    with psycopg.connect(team_db.dsn("app"), autocommit=True) as c:
        for stmt in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(stmt)
        assert c.execute("SELECT version_num FROM alembic_version").fetchall() == [(schema.head(),)]
        assert c.execute("SELECT count(*) FROM journal").fetchone() == (6,)
    Store(team_db.url("app"))  # still current for every runner
    with app.lock(["1/r"], owner="apply x"):  # and the rows it must change, it still may
        assert [r["held"] for r in locks.holders(app)] == [True]
    code, data = _verify(team_db)
    assert code == 0 and data["ok"] and data["rows"] == 6 and data["plans"] == 2

    def owner(sql: str) -> None:
        with psycopg.connect(team_db.dsn("owner"), autocommit=True) as c:
            c.execute(sql)

    seq = {
        r["status"] + r["action_id"] + r["plan_checksum"][0]: r["seq"] for r in app.journal_rows()
    }
    owner(f"UPDATE journal SET status = 'skipped' WHERE seq = {seq['donea1a']}")
    code, data = _verify(team_db)
    assert code == 3 and [(p["seq"], p["kind"]) for p in data["problems"]] == [
        (seq["donea1a"], "edited")
    ]
    owner(f"UPDATE journal SET status = 'done' WHERE seq = {seq['donea1a']}")  # put back
    assert _verify(team_db)[0] == 0
    # a row deleted from the middle of plan a, every row of plan b (as in the issue)
    owner(f"DELETE FROM journal WHERE seq = {seq['intendeda2a']}")
    owner(f"DELETE FROM journal WHERE plan_checksum = '{b}'")
    code, data = _verify(team_db)
    assert code == 3
    assert {(p["kind"], p["plan"]) for p in data["problems"]} == {("gap", a), ("missing-tail", b)}
    code, _, err = invoke(["state", "verify", "--state", team_db.url("app")])
    assert code == 3 and "the journal of" in err and "was changed" in err


# ---------------------------------------------------------------- faults of the server


def _final(store: Store, checksum: str) -> int:
    try:
        rows = store.journal_rows(plan_checksum=checksum, limit=10**6)
    except sa.exc.SQLAlchemyError:
        return 0
    return sum(1 for r in rows if r["status"] in FINAL)


def _done_once(store: Store, plan: dict) -> None:
    rows = store.journal_rows(plan_checksum=plan["checksum"], limit=10**6)
    done = Counter(r["action_id"] for r in rows if r["status"] == "done")
    assert set(done) == {a["id"] for a in plan["actions"]} and max(done.values()) == 1


def test_postgresql_stopping_mid_apply_exits_143_and_resume_finishes_exactly_the_rest(
    env, sandbox, tmp_path, wait_for
):
    from pg import TeamDb, _start  # (imported here: pytest loads pg as a plugin first)

    server, why = _start()  # a server of its own: this test stops it
    if server is None:
        pytest.skip(why)
    try:
        team = TeamDb(server)
        t = Team(env, team, tmp_path)
        env.load(fleet(6))
        plan = t.plan("signer", "lean", "plan.json")
        images, snaps = live_images(env), live_snapshots(env)
        store = Store(team.url("app"))
        sandbox.set_aws_model(enabled=True, latency_ms=40)
        proc = subprocess.Popen(
            t.cmd("apply", str(tmp_path / "plan.json"), "--yes", "--workers", "1", "-o", "json"),
            env=t.environ("signer"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert wait_for(lambda: _final(store, plan["checksum"]) >= 2, timeout=60, every=0.05)
            store.engine.dispose()
            server.stop("fast")  # every session ended, what was committed kept
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            sandbox.reset_aws_model()
        assert proc.returncode == 143, err
        assert "Traceback" not in err and "--resume" in err
        first = json.loads(out)  # the summary, as on SIGTERM
        assert first["interrupted"] == "SIGTERM" and first["not_started"] and first["done"]
        server.restart()
        code, out, err = t.run("signer", "apply", "--resume", "--yes", "-o", "json")
        assert code == 0, err
        assert "its end is not recorded" in err  # the run the server lost: recognised as dead
        rest = json.loads(out)
        assert set(rest["already_done"]) <= set(first["done"])
        assert set(rest["done"]) | set(rest["already_done"]) == {
            a["id"] for a in plan["actions"]
        }, (first, rest)
        _done_once(store, plan)  # each action done once, over both runs
        assert (live_images(env), live_snapshots(env)) == expected_end(plan, images, snaps)
        assert store.resumable() is None
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


def test_a_frozen_lock_session_stops_the_apply_within_the_bound(
    env, sandbox, team_db, tmp_path, wait_for
):
    t = Team(env, team_db, tmp_path)
    # enough actions that the pipelined apply (waves, snapshots deleted with their image)
    # is still running when the frozen session is noticed, a few seconds later
    env.load(fleet(16))
    plan = t.plan("signer", "lean", "plan.json")
    store = Store(team_db.url("app"))
    sandbox.set_aws_model(enabled=True, latency_ms=40)
    proc = subprocess.Popen(
        t.cmd("apply", str(tmp_path / "plan.json"), "--yes", "--workers", "1", "-o", "json"),
        env=t.environ("signer", AMICTL_LOCK_CHECK_TIMEOUT="2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ident = locks.lock_id(f"{env.account}/us-east-1")
    backend = None
    try:
        assert wait_for(lambda: _final(store, plan["checksum"]) >= 1, timeout=60, every=0.05)
        with store.engine.connect() as c:
            backend = c.execute(
                sa.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid::bigint = :hi AND objid::bigint = :lo"
                ),
                {"hi": (ident >> 32) & 0xFFFFFFFF, "lo": ident & 0xFFFFFFFF},
            ).scalar()
        assert backend, "no session holds the apply's lock"
        os.kill(backend, signal.SIGSTOP)  # the lock session's server process hangs
        frozen = time.monotonic()
        out, err = proc.communicate(timeout=90)
        took = time.monotonic() - frozen
    finally:
        if backend:
            with contextlib.suppress(ProcessLookupError):
                os.kill(backend, signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sandbox.reset_aws_model()
    assert proc.returncode == 143, err
    # a check every 2 s, unanswered for 2 s: stopped, with what was in flight finished
    assert took < 20, took
    res = json.loads(out)
    assert res["interrupted"] == "SIGTERM" and res["not_started"]
    rows = store.journal_rows(plan_checksum=plan["checksum"], limit=10**6)
    last = {r["action_id"]: r["status"] for r in rows}
    assert "intended" not in last.values()  # in-flight calls finished and were journaled


def test_a_journal_write_that_hangs_fails_within_its_timeout(team_db, monkeypatch):
    """A journal write waiting on a session that never answers (here: one holding the plan's
    chain lock, as a frozen writer would) fails after AMICTL_JOURNAL_TIMEOUT, as an error
    apply treats as the store lost (exit 143), instead of hanging the apply."""
    import psycopg

    from amictl.apply.executor import store_lost

    monkeypatch.setenv("AMICTL_JOURNAL_TIMEOUT", "1")
    app = Store(team_db.url("signer"))
    plan = "c" * 64
    _journal(app, plan, [("a1", "intended")])
    with psycopg.connect(team_db.dsn("app")) as frozen:  # holds the lock, never commits
        frozen.execute("SELECT pg_advisory_xact_lock(%s)", (locks.lock_id("journal:" + plan),))
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError) as exc:
            _journal(app, plan, [("a1", "done")])
        assert time.monotonic() - started < 5
        assert store_lost(app, exc.value)
        _journal(app, "d" * 64, [("a1", "done")])  # other plans' writers never wait
    _journal(app, plan, [("a1", "done")])  # the lock gone, the chain goes on
    assert app.verify_journal()[2] == []
    monkeypatch.setenv("AMICTL_JOURNAL_TIMEOUT", "soon")
    code, _, err = invoke(["state", "verify", "--state", team_db.url("app")])
    assert code == 0  # (verify writes nothing)
    with pytest.raises(Exception, match="AMICTL_JOURNAL_TIMEOUT='soon' is not a number"):
        _journal(app, plan, [("a2", "intended")])
