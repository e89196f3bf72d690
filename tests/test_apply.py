"""Apply end to end: exit codes, faults, kills and resume, re-checks, locks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from click.testing import CliRunner

from amictl.cli.main import cli
from amictl.state.store import Store
from cli_fleet import invoke

POLICY = """format: 1
holds:
  - tag: legal-hold
rules:
  - name: old
    select: {families: ["*"], older_than: 30d}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
snapshots:
  orphaned: {only_from_images: true, older_than: 7d, action: delete}
"""


def fleet(n: int = 6, fam: str = "f", more: str = "") -> str:
    imgs = more + "".join(
        f"  - {{alias: {fam}{i}, age_days: {400 - i}, tags: {{family: {fam}, version: '{i}'}}, "
        f"snapshots: [{{size_gib: 8}}, {{size_gib: 20, device: /dev/sdf}}]}}\n"
        for i in range(1, n + 1)
    )
    return (
        "images:\n"
        + imgs
        + "snapshots:\n  - {alias: orphan, age_days: 90, made_for_deleted_image: true}\n"
    )


class Cli:
    def __init__(self, env, tmp_path, monkeypatch):
        self.env, self.tmp = env, tmp_path
        for k, v in env.cli_env(tmp_path).items():
            monkeypatch.setenv(k, v)
        (tmp_path / "policy.yaml").write_text(POLICY)

    def __call__(self, *args: str) -> tuple[int, str]:
        code, out, _err = invoke([*args, *self.env.cli_args()])
        return code, out

    def plan(self, *extra: str) -> dict:
        out = self.tmp / "plan.json"
        code, _ = self(
            "plan", "-p", str(self.tmp / "policy.yaml"), "--out", str(out), "-o", "json", *extra
        )
        assert code == 0
        return json.loads(out.read_text())

    def apply(self, *extra: str) -> tuple[int, str]:
        return self("apply", str(self.tmp / "plan.json"), "--yes", "-o", "json", *extra)


@pytest.fixture
def run(env, tmp_path, monkeypatch):
    return Cli(env, tmp_path, monkeypatch)


def live_images(env) -> set[str]:
    ec2 = env.client("ec2")
    return {
        i["ImageId"] for i in ec2.describe_images(Owners=["self"], IncludeDisabled=True)["Images"]
    }


def live_snapshots(env) -> set[str]:
    return {
        s["SnapshotId"]
        for s in env.client("ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"]
    }


def expected_end(plan: dict, images: set[str], snaps: set[str]) -> tuple[set[str], set[str]]:
    gone_i = {a["image_id"] for a in plan["actions"] if a["type"] == "deregister"}
    gone_s = {a["snapshot_id"] for a in plan["actions"] if a["type"] == "delete-snapshot"}
    return images - gone_i, snaps - gone_s


def test_apply_exit_0_and_the_next_plan_is_empty(env, run):
    env.load(fleet(4))
    p = run.plan()
    assert p["summary"]["deregister"] == 3
    code, out = run.apply()  # 3 of 4 of a small family: routine, no override
    assert code == 0, out
    res = json.loads(out)
    assert len(res["done"]) == len(p["actions"]) and not res["failed"]
    again = run.plan()
    assert again["actions"] == []
    code, out = run("journal", "-o", "json")
    rows = json.loads(out)
    assert Counter(r["status"] for r in rows)["done"] == len(p["actions"])
    assert all(r["caller"] for r in rows)


def test_exit_3_refusals(env, run, sandbox):
    env.load(fleet(4))
    (run.tmp / "policy.yaml").write_text(POLICY.replace("keep: {latest: 1}", "keep: {}"))
    p = run.plan()
    assert run.apply()[0] == 3  # blast radius: every image of the family
    (run.tmp / "policy.yaml").write_text(POLICY)
    env.load(fleet(2, fam="g"))
    # tampered plan: checksum mismatch
    p = run.plan()
    p["actions"] = p["actions"][:1]
    (run.tmp / "plan.json").write_text(json.dumps(p))
    assert run.apply()[0] == 3  # checksum
    # incomplete inventory
    sandbox.set_faults(
        [{"action": "DescribeLaunchConfigurations", "code": "AccessDenied", "status": 403}]
    )
    try:
        p = run.plan()
    finally:
        sandbox.clear_faults()
    assert p["inventory"]["complete"] is False
    assert run.apply()[0] == 3
    # stale plan
    p = run.plan()
    assert run.apply("--max-age", "0h")[0] == 3


def ids_gone(env, plan: dict) -> bool:
    gone = {a["image_id"] for a in plan["actions"] if a["type"] == "deregister"}
    return not (gone & live_images(env))


def test_max_destroy(env, run):
    env.load(fleet(3))
    run.plan()
    assert run.apply("--max-destroy", "1")[0] == 3


def test_unsafe_needs_force_unsafe(env, run):
    env.load(fleet(3) + "instances: [{alias: i, image: f1}]\n")
    (run.tmp / "policy.yaml").write_text(
        POLICY.replace("keep: {latest: 1}", "keep: {latest: 1, in_use: false}")
    )
    p = run.plan()
    assert any(a.get("unsafe") for a in p["actions"])
    assert run.apply()[0] == 3
    assert run.apply("--force-unsafe")[0] == 0
    assert ids_gone(env, p)


def test_failures_exit_4_then_rerun_finishes(env, run, sandbox):
    env.load(fleet(4))
    p = run.plan()
    images, snaps = live_images(env), live_snapshots(env)
    sandbox.set_faults(
        [{"action": "DeregisterImage", "code": "UnauthorizedOperation", "status": 403, "count": 2}]
    )
    try:
        code, out = run.apply()
    finally:
        sandbox.clear_faults()
    assert code == 4, out
    res = json.loads(out)
    assert len(res["failed"]) == 2
    # the snapshots of the failed deregisters were skipped, not deleted
    assert res["skipped"]
    # failed and skipped are final for that plan: nothing to resume, the same plan does nothing
    code, out = run("apply", "--resume", "-o", "json")
    assert code == 0 and json.loads(out)["resumed"] is None
    code, out = run.apply()
    assert code == 0 and not json.loads(out)["done"]
    # a new plan re-derives what is still to do
    run.plan()
    code, out = run.apply()
    assert code == 0, out
    want_i, want_s = expected_end(p, images, snaps)
    assert live_images(env) == want_i and live_snapshots(env) == want_s


def test_throttling_and_5xx_bursts_still_complete(env, run, sandbox):
    env.load(fleet(8))
    p = run.plan()
    images, snaps = live_images(env), live_snapshots(env)
    faults = [
        {
            "service": "ec2",
            "code": "RequestLimitExceeded",
            "status": 503,
            "rate": 0.25,
            "count": 8,
        },
        {"service": "ec2", "code": "InternalError", "status": 500, "rate": 0.1, "count": 4},
    ]
    sandbox.set_faults(faults, seed=7)
    try:
        code, out = run.apply()
        injected = sandbox.fault_state()
    finally:
        sandbox.clear_faults()
    # Every action completes through the adaptive retries, or (a rare long streak of faults)
    # is reported as failed, journaled, and done by the next run: never lost.
    assert code in (0, 4), out
    if code == 4:
        assert json.loads(out)["failed"]
        run.plan()
        code, out = run.apply()
        assert code == 0, out
    want_i, want_s = expected_end(p, images, snaps)
    assert live_images(env) == want_i and live_snapshots(env) == want_s
    assert injected["injected"] > 0


def test_reference_added_between_plan_and_apply_stops_deregistration(env, run):
    ids = env.load(fleet(3))["aliases"]
    p = run.plan()
    assert {a["image_id"] for a in p["actions"] if a["type"] == "deregister"} == {
        ids["f1"],
        ids["f2"],
    }
    ec2 = env.client("ec2")
    ec2.create_launch_template(LaunchTemplateName="late", LaunchTemplateData={"ImageId": ids["f1"]})
    ec2.create_launch_template_version(
        LaunchTemplateName="late", LaunchTemplateData={"ImageId": ids["f3"]}
    )
    code, out = run.apply()
    assert code == 0, out
    res = json.loads(out)
    assert any("in use" in why for why in res["skipped"].values())
    live = live_images(env)
    assert ids["f1"] in live and ids["f2"] not in live
    # and its snapshots were not deleted
    f1 = ec2.describe_images(ImageIds=[ids["f1"]])["Images"][0]
    assert {m["Ebs"]["SnapshotId"] for m in f1["BlockDeviceMappings"]} <= live_snapshots(env)


def test_hold_added_between_plan_and_apply(env, run):
    ids = env.load(fleet(2))["aliases"]
    run.plan()
    env.client("ec2").create_tags(
        Resources=[ids["f1"]], Tags=[{"Key": "legal-hold", "Value": "yes"}]
    )
    code, out = run.apply()
    assert code == 0
    assert ids["f1"] in live_images(env)


def test_concurrent_apply_is_refused(env, run):
    env.load(fleet(2))
    run.plan()
    store = Store(os.environ["AMICTL_STATE"])
    with store.lock([f"{env.account}/us-east-1"], owner="someone else"):
        code, _ = run.apply()
    assert code == 3
    assert run.apply()[0] == 0


def _journal_now(store: Store, checksum: str) -> tuple[dict[str, str], set[str], dict[str, str]]:
    """(action -> final status, actions intended and not final, action -> type)."""
    final: dict[str, str] = {}
    opened: set[str] = set()
    types: dict[str, str] = {}
    for r in store.journal_rows(plan_checksum=checksum, limit=100000):
        types[r["action_id"]] = r["type"]
        if r["status"] == "intended":
            opened.add(r["action_id"])
        else:
            final[r["action_id"]] = r["status"]
    return final, opened - set(final), types


def test_sigkill_at_overlapping_stages_then_resume(env, run, tmp_path):
    """SIGKILL the pipelined apply where its stages overlap (an image's snapshot deletion
    done or in flight while other images' marks and deregisters are not), then at points
    counted in journal rows; resume until done: the end state equals a clean run's, every
    action done exactly once. The fleet mixes images whose snapshots go with their
    deregister (DeleteAssociatedSnapshots) and images with a snapshot shared since the
    plan (a plain deregister, then the other snapshot's own DeleteSnapshot)."""
    more = "".join(
        f"  - {{alias: h{i}, age_days: {400 - i}, tags: {{family: h, version: '{i}'}}"
        + (", snapshots: [{size_gib: 8}, {size_gib: 4, device: /dev/sdf}]" if i in (2, 5) else "")
        + "}\n"
        for i in range(1, 11)
    )
    ids = env.load(fleet(12, more=more))["aliases"]
    p = run.plan()
    ec2 = env.client("ec2")
    shared = set()
    for alias in ("h2", "h5"):
        img = ec2.describe_images(ImageIds=[ids[alias]])["Images"][0]
        sid = img["BlockDeviceMappings"][1]["Ebs"]["SnapshotId"]
        ec2.modify_snapshot_attribute(
            SnapshotId=sid,
            Attribute="createVolumePermission",
            OperationType="add",
            UserIds=["444455556666"],
        )
        shared.add(sid)
    kept = {a["id"] for a in p["actions"] if a.get("snapshot_id") in shared}
    assert len(kept) == 2
    types = {a["id"]: a["type"] for a in p["actions"]}
    assert {"mark", "deregister", "delete-snapshot"} <= set(types.values())
    images, snaps = live_images(env), live_snapshots(env)
    environment = {**os.environ, **env.cli_env(tmp_path)}
    store = Store(environment["AMICTL_STATE"])
    cmd = [
        sys.executable,
        "-m",
        "amictl.cli.main",
        "apply",
        str(tmp_path / "plan.json"),
        "--yes",
        "--max-share",
        "100",
        "--workers",
        "2",
        "--no-progress",
        "-o",
        "json",
        *env.cli_args(),
    ]
    marks = {aid for aid, t in types.items() if t == "mark"}

    def overlapping(final: dict[str, str], opened: set[str], start: int) -> bool:
        snap_started = any(types[a] == "delete-snapshot" for a in set(final) | opened)
        return snap_started and not marks <= set(final)

    def after_rows(n: int):  # noqa: ANN202
        return lambda final, opened, start: len(final) >= start + n

    # the first kill: a snapshot deletion started while marks remain (stages overlap)
    points = [overlapping, after_rows(3), after_rows(7)]
    seen_overlap = False
    for point in points:
        start = len(_journal_now(store, p["checksum"])[0])
        proc = subprocess.Popen(
            cmd, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            final, opened, _ = _journal_now(store, p["checksum"])
            if point(final, opened, start):
                os.kill(proc.pid, signal.SIGKILL)
                seen_overlap |= overlapping(final, opened, start)
                break
            time.sleep(0.01)
        proc.wait()
    assert seen_overlap, "no kill landed where a snapshot stage overlapped the marks"
    final_run = subprocess.run(cmd, env=environment, capture_output=True, text=True, timeout=300)
    assert final_run.returncode == 0, final_run.stderr
    want_i, want_s = expected_end(p, images, snaps)
    assert live_images(env) == want_i
    assert live_snapshots(env) == want_s | shared  # the shared ones stay
    rows = store.journal_rows(plan_checksum=p["checksum"], limit=100000)
    done = Counter(r["action_id"] for r in rows if r["status"] == "done")
    assert set(done) == {a["id"] for a in p["actions"]} - kept
    assert max(done.values()) == 1  # no action done twice
    assert {r["action_id"] for r in rows if r["status"] == "skipped"} == kept
    # both ways of deleting a snapshot were exercised
    msgs = [
        r["message"] or "" for r in rows if r["status"] == "done" and r["type"] == "delete-snapshot"
    ]
    assert any("DeleteAssociatedSnapshots" in m for m in msgs)
    assert any("DeleteAssociatedSnapshots" not in m for m in msgs)


def test_recycle_bin_awareness_and_requirement(env, run):
    ids = env.load(fleet(2))["aliases"]
    (run.tmp / "policy.yaml").write_text(POLICY + "options: {require_recycle_bin: true}\n")
    run.plan()
    code, _ = run.apply()
    assert code == 3  # no Recycle Bin rule: deletions would not be recoverable
    rbin = env.client("rbin")
    for rtype in ("EC2_IMAGE", "EBS_SNAPSHOT"):
        rbin.create_rule(
            ResourceType=rtype,
            RetentionPeriod={"RetentionPeriodValue": 14, "RetentionPeriodUnit": "DAYS"},
        )
    code, out = run.apply()
    assert code == 0, out
    res = json.loads(out)
    assert all(v["recoverable"] for v in res["recycle_bin"].values())
    assert all("14 days" in v["summary"] for v in res["recycle_bin"].values())
    binned = env.client("ec2").list_images_in_recycle_bin()["Images"]
    assert [i["ImageId"] for i in binned] == [ids["f1"]]


def test_two_accounts_in_one_run_with_apply_p(sandbox, tmp_path, monkeypatch):
    from conftest import Env, _accounts

    a, b = Env(sandbox, str(next(_accounts))), Env(sandbox, str(next(_accounts)))
    ids_a = a.load(fleet(2))["aliases"]
    ids_b = b.load(fleet(2))["aliases"]
    for k, v in a.cli_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    pol = tmp_path / "policy.yaml"
    pol.write_text(POLICY)
    args = ["--endpoint-url", sandbox.endpoint, "--role-arn", a.role_arn, "--role-arn", b.role_arn]
    res = CliRunner().invoke(cli, ["apply", "-p", str(pol), "--yes", "-o", "json", *args])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out["caller"]) == {a.account, b.account}
    assert ids_a["f1"] not in live_images(a) and ids_a["f2"] in live_images(a)
    assert ids_b["f1"] not in live_images(b) and ids_b["f2"] in live_images(b)
