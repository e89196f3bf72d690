"""Two hosts, one shared state store, end to end through the CLI against the sandbox.

Host A applies a plan; host B's apply of the same account/region is refused (exit 3, naming
A's caller, host and pid); A is SIGKILLed mid-run; B's `apply --resume` finishes the plan,
each action done exactly once. On PostgreSQL the two hosts have different names; on SQLite
(one machine's store) they are two processes of one host.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from amictl.state import locks
from amictl.state.store import FINAL, Store
from test_apply import Cli, expected_end, fleet, live_images, live_snapshots

pytest_plugins = ["pg"]  # the pg_server, state_url and wait_for fixtures


def _cmd(env, *args: str) -> list[str]:
    return [sys.executable, "-m", "amictl.cli.main", *args, "--no-progress", *env.cli_args()]


def _freeze(proc: subprocess.Popen[str], store: Store) -> None:
    """SIGSTOP the process, but not inside a SQLite write transaction (it would keep the
    database locked for everyone: a real hung host on SQLite is not the point here)."""
    for _ in range(100):
        os.kill(proc.pid, signal.SIGSTOP)
        if store.engine.dialect.name != "sqlite":
            return
        db = sqlite3.connect(store.engine.url.database or "", timeout=0)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.rollback()
            return
        except sqlite3.OperationalError:
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.01)
        finally:
            db.close()
    raise AssertionError("could not stop the apply outside a write transaction")


def _final_rows(store: Store, checksum: str) -> int:
    rows = store.journal_rows(plan_checksum=checksum, limit=10**6)
    return sum(1 for r in rows if r["status"] in FINAL)


def test_second_host_is_refused_then_resumes_what_a_killed_host_started(
    env, sandbox, tmp_path, monkeypatch, state_url, wait_for
):
    monkeypatch.setenv("AMICTL_STATE", state_url)
    run = Cli(env, tmp_path, monkeypatch)
    monkeypatch.setenv("AMICTL_STATE", state_url)  # Cli set the SQLite default
    env.load(fleet(6))
    p = run.plan()
    images, snaps = live_images(env), live_snapshots(env)
    store = Store(state_url)
    pg = store.engine.dialect.name == "postgresql"
    base = {**os.environ, **env.cli_env(tmp_path), "AMICTL_STATE": state_url}
    host_a = {**base, "AMICTL_HOSTNAME": "runner-a"}
    host_b = {**base, "AMICTL_HOSTNAME": "runner-b" if pg else "runner-a"}
    plan_file = str(tmp_path / "plan.json")
    a = subprocess.Popen(
        _cmd(env, "apply", plan_file, "--yes", "--max-share", "100", "--workers", "1"),
        env=host_a,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # A is mid-run (lock held, some actions done): freeze it there, like a hung runner
        assert wait_for(lambda: _final_rows(store, p["checksum"]) >= 1, timeout=60, every=0.02)
        _freeze(a, store)
        assert a.poll() is None, "A finished before it could be stopped: the test proves nothing"
        b = subprocess.run(
            _cmd(env, "apply", plan_file, "--yes", "--max-share", "100", "-o", "json"),
            env=host_b,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert b.returncode == 3, b.stderr
        assert "another apply holds the lock" in b.stderr
        assert f"pid {a.pid} on runner-a" in b.stderr
        assert f"by arn:aws:sts::{env.account}:assumed-role/" in b.stderr  # A's caller
        assert "Traceback" not in b.stderr
        os.kill(a.pid, signal.SIGKILL)
        a.wait()
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    before = Counter(
        r["action_id"]
        for r in store.journal_rows(plan_checksum=p["checksum"], limit=10**6)
        if r["status"] == "done"
    )
    assert 0 < len(before) < len(p["actions"])
    # two resumers at once, on two hosts: the lock lets one work at a time, the journal read
    # under it makes the other find nothing left (or it is refused while the first works)
    host_c = {**base, "AMICTL_HOSTNAME": "runner-c" if pg else "runner-a"}
    resumers = [
        subprocess.Popen(
            _cmd(env, "apply", "--resume", "--yes", "--workers", "4", "-o", "json"),
            env=h,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for h in (host_b, host_c)
    ]
    outcomes = [(r.wait(timeout=120), *r.communicate()) for r in resumers]
    done_now: list[str] = []
    for code, out, err in outcomes:
        assert code in (0, 3), err
        if code == 3:
            assert "another apply holds the lock" in err and "Traceback" not in err
            continue
        res = json.loads(out)
        if res != {"resumed": None}:
            assert "resuming plan" in err
            assert set(res["already_done"]) >= set(before)
            done_now += res["done"]
    assert sorted(done_now + list(before)) == sorted(x["id"] for x in p["actions"])
    want_i, want_s = expected_end(p, images, snaps)
    assert live_images(env) == want_i and live_snapshots(env) == want_s
    rows = store.journal_rows(plan_checksum=p["checksum"], limit=10**6)
    done = Counter(r["action_id"] for r in rows if r["status"] == "done")
    assert set(done) == {x["id"] for x in p["actions"]}
    assert max(done.values()) == 1  # each action exactly once across both hosts
    runs = store.latest_apply_run()
    assert runs is not None and runs["host"] in ("runner-b", "runner-c", "runner-a")
    assert runs["status"] == "finished"
    # nothing left to resume, no lock left behind
    assert store.resumable() is None
    assert locks.holders(store) == []


def test_scheduled_script_exit_codes_and_json_summaries(env, tmp_path, pg_server):
    """examples/schedules/amictl-scheduled.sh: plan, then the reviewed apply with a Recycle Bin
    requirement: refused (exit 3) without Recycle Bin rules, applied (exit 0) with them."""
    script = Path(__file__).resolve().parents[1] / "examples" / "schedules" / "amictl-scheduled.sh"
    env.load(fleet(3))
    out = tmp_path / "out"
    environment = {
        **os.environ,
        **env.cli_env(tmp_path),
        "AMICTL_STATE": pg_server.url(),
        "AMICTL": str(Path(sys.executable).parent / "amictl"),
        "AMICTL_ARGS": " ".join(env.cli_args()),
        "OUT": str(out),
    }

    def step(*args: str) -> tuple[int, str, dict]:
        res = subprocess.run(
            ["bash", str(script), *args], env=environment, capture_output=True, text=True
        )
        return res.returncode, res.stderr, json.loads((out / "status.json").read_text())

    code, err, status = step("plan")
    assert code == 0, err
    assert status["step"] == "plan" and status["exit"] == 0 and status["meaning"] == "ok"
    summary = json.loads((out / "plan-summary.json").read_text())
    assert summary["actions"] > 0 and summary["by_type"]["deregister"] == 1
    assert summary["inventory_complete"] is True
    assert json.loads((out / "inventory.json").read_text())["complete"] is True
    before = live_images(env)
    code, err, status = step("apply", str(out / "plan.json"))
    assert code == 3 and status == {**status, "step": "apply", "exit": 3, "meaning": "refused"}
    assert "Recycle Bin" in err and "Traceback" not in err
    assert live_images(env) == before  # refused before any change
    rbin = env.client("rbin")
    for rtype in ("EC2_IMAGE", "EBS_SNAPSHOT"):
        rbin.create_rule(
            ResourceType=rtype,
            RetentionPeriod={"RetentionPeriodValue": 7, "RetentionPeriodUnit": "DAYS"},
        )
    code, err, status = step("apply", str(out / "plan.json"))
    assert code == 0 and status["meaning"] == "ok", err
    res = json.loads((out / "apply-summary.json").read_text())
    assert len(res["done"]) == summary["actions"] and not res["failed"]
    assert all(v["recoverable"] for v in res["recycle_bin"].values())
    code, err, status = step("resume")
    assert code == 0 and json.loads((out / "resume-summary.json").read_text()) == {"resumed": None}
    code, err, _ = step("nonsense")
    assert code == 2 and "usage" in err


def test_schedule_examples_use_the_script_and_a_reviewed_apply():
    import yaml

    here = Path(__file__).resolve().parents[1] / "examples" / "schedules"
    wf = yaml.safe_load((here / "github-actions.yml").read_text())
    plan, apply = wf["jobs"]["plan"], wf["jobs"]["apply"]
    runs = lambda job: " ".join(st.get("run", "") for st in job["steps"])  # noqa: E731
    assert "amictl-scheduled.sh plan" in runs(plan)
    assert "amictl-scheduled.sh apply" in runs(apply)
    assert apply["needs"] == "plan" and apply["environment"]  # reviewers approve the plan
    assert wf["concurrency"]["cancel-in-progress"] is False  # never cancel an apply mid-run
    cron = [
        ln.split()
        for ln in (here / "crontab").read_text().splitlines()
        if ln.strip() and not ln.startswith("#") and "=" not in ln.split()[0]
    ]
    assert cron and all(len(f) >= 7 for f in cron)  # 5 time fields, user, command
    modes = {f[f.index(next(x for x in f if x.endswith("amictl-scheduled.sh"))) + 1] for f in cron}
    assert {"plan", "apply"} <= modes
