"""Second-person approvals (issue 29): apply refuses a plan over the team's thresholds until
an identity other than its planner approves that exact plan; on SQLite and PostgreSQL,
concurrent approvals are counted once each."""

from __future__ import annotations

import json
import threading

import pytest

from amictl.approvals import (
    ApprovalConfig,
    ApprovalRefused,
    approvals_of,
    approve,
    record_planner,
    save_config,
)
from amictl.state.store import Store
from cli_fleet import CliFleet

pytest_plugins = ["pg"]  # the pg_server, state_url and wait_for fixtures

FLEET = """
images:
  - {alias: a1, name: app-1.0.0, age_days: 100, tags: {family: app, version: 1.0.0},
     snapshots: [{size_gib: 8}]}
  - {alias: a2, name: app-2.0.0, age_days: 10, tags: {family: app, version: 2.0.0},
     snapshots: [{size_gib: 8}]}
"""
POLICY = """format: 1
name: appr
rules:
  - name: old
    select: {families: ["*"]}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""


def user(f: CliFleet, name: str) -> tuple[dict[str, str], str]:
    """An IAM user of the test's account: its credentials (as CLI env) and ARN."""
    iam = f.env.client("iam")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }, arn


def images(f: CliFleet) -> set[str]:
    ec2 = f.env.client("ec2")
    return {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}


def test_apply_waits_for_a_second_identity_and_an_edited_plan_loses_its_approvals(
    sandbox, tmp_path
):
    f = CliFleet(sandbox, FLEET, tmp_path)
    pol, plan = tmp_path / "p.yaml", tmp_path / "plan.json"
    pol.write_text(POLICY)
    alice, alice_arn = user(f, "alice")
    bob, bob_arn = user(f, "bob")
    code, out, err = f.run("approval-config", "--required", "1", "--images", "0", **alice)
    assert code == 0, out + err
    code, out, err = f.run("plan", "--policy", str(pol), "--out", str(plan), **alice)
    assert code == 0 and f"planned by {alice_arn}" in err, out + err
    # apply refuses, says who may approve, and changes nothing
    code, out, err = f.run("apply", str(plan), "--yes", **alice)
    assert code == 3, out + err
    assert "needs 1 approval(s)" in err and f"except the planner {alice_arn}" in err
    assert f.ids["a1"] in images(f)
    # the planner's own approval does not count
    code, out, err = f.run("approve", str(plan), **alice)
    assert code == 3 and "the planner's own approval does not count" in err, out + err
    # bob approves, twice: one approval
    for _ in range(2):
        code, out, err = f.run("approve", str(plan), "--comment", "looked at it", **bob)
        assert code == 0, out + err
    st = f.json("approvals", str(plan), **alice)
    assert st["approved"] and st["counted"] == 1 and st["planner"] == alice_arn
    assert [a["arn"] for a in st["approvals"]] == [bob_arn]
    # an edited plan (checksum recomputed) carries none of them
    body = json.loads(plan.read_text())
    body["actions"] = [a for a in body["actions"] if a["type"] != "delete-snapshot"]
    body.pop("signature", None)
    from amictl.policy.plan_model import Plan

    body["checksum"] = Plan.checksum_of(body)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(body))
    st = f.json("approvals", str(edited), **alice)
    assert not st["approved"] and st["counted"] == 0 and st["planner"] is None
    code, out, err = f.run("apply", str(edited), "--yes", "--accept-unsigned", **bob)
    assert code == 3 and "no recorded planner" in err, out + err
    assert f.ids["a1"] in images(f)
    # the reviewed plan goes
    code, out, err = f.run("apply", str(plan), "--yes", **alice)
    assert code == 0, out + err
    assert f.ids["a1"] not in images(f)


def test_a_plan_under_the_thresholds_needs_no_approval(sandbox, tmp_path):
    f = CliFleet(sandbox, FLEET, tmp_path)
    pol, plan = tmp_path / "p.yaml", tmp_path / "plan.json"
    pol.write_text(POLICY)
    code, out, err = f.run("approval-config", "--required", "2", "--images", "5", "--gib", "100")
    assert code == 0, out + err
    code, out, err = f.run("plan", "--policy", str(pol), "--out", str(plan))
    assert code == 0, out + err
    st = f.json("approvals", str(plan))
    assert st["needed"] is False and st["approved"] is True
    code, out, err = f.run("apply", str(plan), "--yes")
    assert code == 0, out + err


def test_protected_family_and_approvers_list(sandbox, tmp_path):
    f = CliFleet(sandbox, FLEET, tmp_path)
    pol, plan = tmp_path / "p.yaml", tmp_path / "plan.json"
    pol.write_text(POLICY)
    carol, _ = user(f, "carol")
    dave, dave_arn = user(f, "dave")
    f.run(
        "approval-config",
        "--required",
        "1",
        "--protected-family",
        "ap*",
        "--approver",
        "*:user/dave",
    )
    f.run("plan", "--policy", str(pol), "--out", str(plan))
    st = f.json("approvals", str(plan))
    assert st["reasons"] == ["deregisters in protected family app"]
    assert "*:user/dave" in st["who_may_approve"]
    code, out, err = f.run("approve", str(plan), **carol)
    assert code == 3 and "may not approve" in err, out + err
    code, out, err = f.run("approve", str(plan), **dave)
    assert code == 0, out + err
    assert f.json("approvals", str(plan))["approved"] is True


def test_concurrent_approvals_are_counted_once_each(state_url):
    store = Store(state_url)
    cfg = ApprovalConfig(required=3, images=0)
    save_config(store, cfg, "arn:aws:iam::1:user/admin")
    checksum = "ab" * 32
    record_planner(store, checksum, "arn:aws:iam::1:user/planner")
    record_planner(store, checksum, "arn:aws:iam::1:user/someone-else")  # first writer wins
    arns = [f"arn:aws:iam::1:user/u{i}" for i in range(4)] * 3  # each approves 3 times at once
    results: list[bool] = []
    barrier = threading.Barrier(len(arns))

    def go(arn: str) -> None:
        s = Store(state_url)  # a process/host of its own
        barrier.wait()
        results.append(approve(s, checksum, arn, None, cfg))

    threads = [threading.Thread(target=go, args=(a,)) for a in arns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = approvals_of(store, checksum)
    assert sorted(r.arn for r in rows) == sorted(set(arns))
    assert results.count(True) == 4
    with pytest.raises(ApprovalRefused, match="planner"):
        approve(store, checksum, "arn:aws:iam::1:user/planner", None, cfg)
    assert approvals_of(store, "cd" * 32) == []  # another checksum: none


def _unsigned_without_sizes(plan_path, tmp_path):  # type: ignore[no-untyped-def]
    from amictl.policy.plan_model import Plan

    body = json.loads(plan_path.read_text())
    for a in body["actions"]:
        a.pop("size_gib", None)
    body.pop("signature", None)
    body["checksum"] = Plan.checksum_of(body)
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(body))
    return edited


@pytest.mark.parametrize("guard", [True, False], ids=["live", "twin-plan-only"])
def test_the_gib_threshold_counts_the_live_snapshot_sizes(sandbox, tmp_path, monkeypatch, guard):
    """An unsigned plan whose snapshot sizes were deleted still crosses `--gib 4`: the 8 GiB
    is read live. Twin: with the live read patched out, apply deletes with no approval."""
    import amictl.approvals.check as check
    from amictl.approvals.live import LiveFacts

    if not guard:
        monkeypatch.setattr(check, "read_live_facts", lambda conn, plan, *_: LiveFacts())
    f = CliFleet(sandbox, FLEET, tmp_path)
    pol, plan = tmp_path / "p.yaml", tmp_path / "plan.json"
    pol.write_text(POLICY)
    code, out, err = f.run("approval-config", "--required", "1", "--gib", "4")
    assert code == 0, out + err
    code, out, err = f.run("plan", "--policy", str(pol), "--out", str(plan))
    assert code == 0, out + err
    edited = _unsigned_without_sizes(plan, tmp_path)
    assert f.json("approvals", str(edited))["needed"] is guard
    code, out, err = f.run("apply", str(edited), "--yes", "--accept-unsigned")
    ec2 = f.env.client("ec2")
    left = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    if guard:
        assert code == 3 and "8 GiB" in err, out + err
        assert f.ids["a1"] in left
    else:
        assert code == 0 and f.ids["a1"] not in left, out + err


def test_one_image_retire_cannot_go_around_the_thresholds(sandbox, tmp_path):
    """`retire AMI` makes and applies its own one-image plan in one run: over the thresholds
    it is refused (nobody else can have approved that plan), and the image stays."""
    f = CliFleet(sandbox, FLEET, tmp_path)
    f.run("approval-config", "--required", "1", "--protected-family", "app")
    a1 = f.ids["a1"]
    code, out, err = f.run("retire", a1, "--snapshots", "delete", "--yes")
    assert code == 3 and "approval thresholds" in err, out + err
    assert a1 in images(f)
    # deprecating deregisters nothing: under every threshold, it is not held up
    code, out, err = f.run("deprecate", a1, "--yes")
    assert code == 0, out + err
