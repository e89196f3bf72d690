"""Retention AWS enforces (issue 29): snapshot locks and stored-image tasks in the sandbox,
read by the inventory and decided as reasons to keep by the one decision (plan and apply)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.exceptions import ClientError

from cli_fleet import CliFleet

FLEET = """
images:
  - {alias: a1, name: app-1.0.0, age_days: 100, tags: {family: app, version: 1.0.0},
     snapshots: [{size_gib: 8}]}
  - {alias: a2, name: app-2.0.0, age_days: 10, tags: {family: app, version: 2.0.0},
     snapshots: [{size_gib: 8}]}
"""
POLICY = """format: 1
name: ret
rules:
  - name: old
    select: {families: ["*"]}
    keep: {latest: 1}
    retire: {deregister: 0d, snapshots: delete}
"""


@pytest.fixture
def fleet(sandbox, tmp_path):
    f = CliFleet(sandbox, FLEET, tmp_path)
    (tmp_path / "p.yaml").write_text(POLICY)
    f.policy = str(tmp_path / "p.yaml")  # type: ignore[attr-defined]
    return f


def snap_of(ec2, image_id: str) -> str:
    img = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return str(img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])


def locks(ec2) -> dict[str, dict]:
    return {s["SnapshotId"]: s for s in ec2.describe_locked_snapshots()["Snapshots"]}


# ------------------------------------------------------------------ the sandbox


def test_sandbox_snapshot_locks_as_aws(env):
    ids = env.load(FLEET)["aliases"]
    ec2 = env.client("ec2")
    s1, s2 = snap_of(ec2, ids["a1"]), snap_of(ec2, ids["a2"])
    ec2.lock_snapshot(SnapshotId=s1, LockMode="governance", LockDuration=1)
    out = ec2.lock_snapshot(SnapshotId=s2, LockMode="compliance", LockDuration=30, CoolOffPeriod=2)
    assert out["LockState"] == "compliance-cooloff"
    now = dt.datetime.now(dt.UTC)
    got = locks(ec2)
    assert got[s1]["LockState"] == "governance"
    assert got[s2]["CoolOffPeriodExpiresOn"] > now + dt.timedelta(hours=1)
    assert got[s2]["LockExpiresOn"] > now + dt.timedelta(days=29)
    by_state = ec2.describe_locked_snapshots(Filters=[{"Name": "lock-state", "Values": ["governance"]}])
    assert [s["SnapshotId"] for s in by_state["Snapshots"]] == [s1]
    ec2.deregister_image(ImageId=ids["a1"])
    with pytest.raises(ClientError, match="SnapshotLocked"):
        ec2.delete_snapshot(SnapshotId=s1)
    with pytest.raises(ClientError, match="CoolOffPeriod applies to compliance"):
        ec2.lock_snapshot(SnapshotId=s1, LockMode="governance", LockDuration=1, CoolOffPeriod=1)
    with pytest.raises(ClientError, match="exactly one"):
        ec2.lock_snapshot(SnapshotId=s1, LockMode="governance")
    ec2.unlock_snapshot(SnapshotId=s1)  # governance: whoever may unlock it can
    ec2.delete_snapshot(SnapshotId=s1)
    ec2.unlock_snapshot(SnapshotId=s2)  # compliance, still cooling off: can be unlocked
    assert s2 not in locks(ec2)
    ec2.lock_snapshot(SnapshotId=s2, LockMode="compliance", LockDuration=30)
    with pytest.raises(ClientError, match="cannot be unlocked"):
        ec2.unlock_snapshot(SnapshotId=s2)
    with pytest.raises(ClientError, match="only be extended"):
        ec2.lock_snapshot(SnapshotId=s2, LockMode="compliance", LockDuration=2)
    with pytest.raises(ClientError, match="cannot change"):
        ec2.lock_snapshot(SnapshotId=s2, LockMode="governance", LockDuration=60)
    ec2.lock_snapshot(SnapshotId=s2, LockMode="compliance", LockDuration=60)  # extended
    ec2.deregister_image(ImageId=ids["a2"], DeleteAssociatedSnapshots=True)
    assert ec2.describe_snapshots(SnapshotIds=[s2])["Snapshots"]  # the lock kept it


def test_sandbox_store_and_restore_an_image_to_a_launchable_image(env):
    ids = env.load(FLEET)["aliases"]
    ec2, s3 = env.client("ec2"), env.client("s3")
    s3.create_bucket(Bucket=f"vault-{env.account}")
    with pytest.raises(ClientError, match="does not exist"):
        ec2.create_store_image_task(ImageId=ids["a1"], Bucket="nope-" + env.account)
    key = ec2.create_store_image_task(ImageId=ids["a1"], Bucket=f"vault-{env.account}")[
        "ObjectKey"
    ]
    tasks = ec2.describe_store_image_tasks()["StoreImageTaskResults"]
    assert [(t["AmiId"], t["StoreTaskState"]) for t in tasks] == [(ids["a1"], "Completed")]
    stored = json.loads(s3.get_object(Bucket=f"vault-{env.account}", Key=key)["Body"].read())
    assert stored["ImageId"] == ids["a1"]
    ec2.deregister_image(ImageId=ids["a1"])
    new = ec2.create_restore_image_task(
        Bucket=f"vault-{env.account}", ObjectKey=key, Name="app-1.0.0-restored"
    )["ImageId"]
    img = ec2.describe_images(ImageIds=[new])["Images"][0]
    assert img["State"] == "available" and img["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 8
    run = ec2.run_instances(ImageId=new, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    assert run["Instances"][0]["ImageId"] == new


# ------------------------------------------------------------------ the one decision


def test_a_compliance_locked_snapshot_is_shown_with_its_expiry_and_never_attempted(fleet):
    ec2 = fleet.env.client("ec2")
    a1 = fleet.ids["a1"]
    snap = snap_of(ec2, a1)
    # a plan made before the lock: apply re-decides live and never tries the snapshot
    path = fleet.tmp / "plan.json"
    code, out, err = fleet.run("plan", "--policy", fleet.policy, "--out", str(path))
    assert code == 0, out + err
    doomed = [a for a in json.loads(path.read_text())["actions"] if a["type"] == "deregister"]
    assert [a["image_id"] for a in doomed] == [a1]
    ec2.lock_snapshot(SnapshotId=snap, LockMode="compliance", LockDuration=30)
    until = locks(ec2)[snap]["LockExpiresOn"].strftime("%Y-%m-%dT%H:%M:%SZ")
    code, out, err = fleet.run("explain", a1, "--policy", fleet.policy)
    assert code == 0, out + err
    assert f"locked in compliance mode until {until}" in " ".join(out.split())
    plan = fleet.json("plan", "--policy", fleet.policy)  # a new plan does not retire it
    assert not [a for a in plan["actions"] if a.get("image_id") == a1 and a["type"] != "mark"]
    fleet.env.sandbox.reset_call_counts()
    code, out, err = fleet.run("apply", str(path), "--yes")
    calls = fleet.env.sandbox.aws_model_state()["calls"]
    assert calls.get("ec2.DeleteSnapshot", 0) == 0, calls
    assert calls.get("ec2.DeregisterImage", 0) == 0, calls
    assert ec2.describe_images(ImageIds=[a1])["Images"]  # AWS's own state
    assert ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"]


def test_an_image_being_stored_to_s3_is_kept(fleet):
    ec2, s3 = fleet.env.client("ec2"), fleet.env.client("s3")
    a1 = fleet.ids["a1"]
    s3.create_bucket(Bucket=f"keep-{fleet.env.account}")
    fleet.env.sandbox.set_retention(store_seconds=3600)
    try:
        ec2.create_store_image_task(ImageId=a1, Bucket=f"keep-{fleet.env.account}")
        code, out, err = fleet.run("explain", a1, "--policy", fleet.policy)
    finally:
        fleet.env.sandbox.set_retention(store_seconds=0)
    assert code == 0, out + err
    assert "CreateStoreImageTask in progress" in out
